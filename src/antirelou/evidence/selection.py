"""Which evidence records an export is about: an incident, a sender, a period, or all.

Each selection is one query over the normal tables that yields record refs, joined to
the chain by its indexed `ref` column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, String, cast, literal, select, union

from antirelou import models
from antirelou.evidence.tables import evidence_records
from antirelou.phone import classify

m, r, c = models.messages, models.replies, models.calls
_e = evidence_records


class SelectionError(ValueError):
    """The selection is not one of the four allowed forms."""


@dataclass(frozen=True)
class Selection:
    incident: int | None = None
    sender: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    everything: bool = False

    def __post_init__(self) -> None:
        forms = [self.incident is not None, self.sender is not None, self.period, self.everything]
        if sum(forms) != 1:
            raise SelectionError("choose one of --incident, --sender, --since/--until, --all")
        if self.period and (self.since is None or self.until is None):
            raise SelectionError("--since and --until go together")
        if self.since and self.until and self.since >= self.until:
            raise SelectionError("--since must be before --until")

    @property
    def period(self) -> bool:
        return self.since is not None or self.until is not None

    def slug(self) -> str:
        if self.incident is not None:
            return f"incident-{self.incident}"
        if self.sender is not None:
            return "sender"
        return "period" if self.period else "all"


def _ref(prefix: str, column: Any) -> Any:
    return literal(prefix) + cast(column, String)


def _refs(selection: Selection) -> Select[Any]:
    if selection.incident is not None:
        return _incident_refs(selection.incident)
    assert selection.sender is not None
    return _sender_refs(selection.sender)


def _incident_refs(incident: int) -> Select[Any]:
    return (
        union(
            select(_ref("message:", m.c.id).label("ref")).where(m.c.incident_id == incident),
            select(_ref("reply:", r.c.id))
            .join(m, r.c.message_id == m.c.id)
            .where(m.c.incident_id == incident),
            select(_ref("call:", c.c.id)).where(c.c.incident_id == incident),
            select(literal(f"incident:{incident}")),
        )
        .subquery()
        .select()
    )


def _sender_refs(number: str) -> Select[Any]:
    forms = sorted({number.strip(), classify(number).key})
    return (
        union(
            select(_ref("message:", m.c.id).label("ref")).where(m.c.sender.in_(forms)),
            select(_ref("reply:", r.c.id)).where(r.c.recipient.in_(forms)),
            select(_ref("call:", c.c.id)).where(c.c.caller.in_(forms)),
        )
        .subquery()
        .select()
    )


def selected_seqs(conn: Connection, selection: Selection) -> list[int]:
    """The seqs of the records the selection is about, in chain order."""
    query = select(_e.c.seq)
    if selection.everything:
        pass
    elif selection.period:
        query = query.where(_e.c.at >= selection.since, _e.c.at < selection.until)
    else:
        refs = _refs(selection).subquery()
        query = query.where(_e.c.ref.in_(select(refs.c.ref)))
    return [int(seq) for seq in conn.execute(query.order_by(_e.c.seq)).scalars()]


def describe(selection: Selection, lang: str) -> str:
    fr = lang == "fr"
    if selection.incident is not None:
        return f"incident n° {selection.incident}" if fr else f"incident #{selection.incident}"
    if selection.sender is not None:
        return f"expéditeur {selection.sender}" if fr else f"sender {selection.sender}"
    if selection.period:
        assert selection.since is not None
        assert selection.until is not None
        span = f"{selection.since:%Y-%m-%d %H:%M} – {selection.until:%Y-%m-%d %H:%M} UTC"
        return ("période " if fr else "period ") + span
    return "tout le journal" if fr else "the whole log"


__all__ = ["Selection", "SelectionError", "describe", "selected_seqs"]
