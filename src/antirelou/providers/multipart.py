"""Long inbound texts that arrive one part per webhook, put back together before any decision.

Vonage delivers each part of a long text as its own webhook (concat-ref, concat-total,
concat-part) and re-sends any of them for 24 hours until it gets a 200. Deciding on each
part would answer a man once per part, so parts are stored durably and the text enters
`inbound.receive` only once every part is there, as ONE message whose provider id is derived
from the reference, the sender and the parts' own ids: whatever order the parts arrive in,
and however often they are re-sent, it is the same message.

The concatenation reference is only a byte or two, so a sender reuses it after a few hundred
long texts: a group is "open" until sealed, and a part number arriving twice in an open
group (with a different id) starts a new text, the old one being sealed as it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, func, select, text, update

from antirelou import models
from antirelou.inbound import receive
from antirelou.providers.base import InboundSms
from antirelou.service import Service

log = logging.getLogger(__name__)
MISSING = "[...]"  # stands for a part that never came, in a text sealed without it
_PARTS = models.inbound_parts


@dataclass(frozen=True)
class Part:
    """One part of a long text, as an adapter parsed it (signature already checked)."""

    provider: str
    part_id: str  # the provider's id of this part: a re-sent part has the same one
    sender: str
    recipient: str
    ref: str  # the concatenation reference the sender's phone chose
    number: int  # 1..total
    total: int
    body: str
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def group_key(self) -> str:
        """Which text this part belongs to (until the reference is reused)."""
        return f"{self.recipient}|{self.sender}|{self.ref}|{self.total}"


def store_part(engine: Engine, part: Part, now: datetime) -> list[InboundSms]:
    """Keep one part; return the texts that are now whole, for the caller to `receive`.

    A part seen before returns the text it was sealed into, if any, so that a caller which
    died between sealing and receiving gets a second chance when the provider re-sends it
    (`receive` ignores a message id it already has). Groups are serialised: two last parts
    arriving together cannot both miss completion.
    """
    with engine.begin() as conn:
        _lock(conn, part.provider, part.group_key)
        known = conn.execute(
            select(_PARTS.c.assembled_id).where(
                _PARTS.c.provider == part.provider, _PARTS.c.part_id == part.part_id
            )
        ).first()
        if known is not None:
            return [_rebuild(conn, part.provider, known[0])] if known[0] else []
        return _add(conn, part, now)


def _add(conn: Connection, part: Part, now: datetime) -> list[InboundSms]:
    ready: list[InboundSms] = []
    rows = _open_rows(conn, part.provider, part.group_key)
    if any(row.part == part.number for row in rows):
        log.warning("%s concat-ref reused before its text was whole; sealing it", part.provider)
        ready.append(_seal(conn, part.provider, rows))
        rows = []
    _insert(conn, part, now)
    rows = _open_rows(conn, part.provider, part.group_key)
    if {row.part for row in rows} == set(range(1, part.total + 1)):
        ready.append(_seal(conn, part.provider, rows))
    return ready


def _lock(conn: Connection, provider: str, group_key: str) -> None:
    """Serialise writers of one group. SQLite already is (BEGIN IMMEDIATE); PostgreSQL
    takes a transaction-scoped advisory lock, so the second writer sees the first's part."""
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"{provider}|{group_key}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _open_rows(conn: Connection, provider: str, group_key: str) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(_PARTS)
            .where(
                _PARTS.c.provider == provider,
                _PARTS.c.group_key == group_key,
                _PARTS.c.assembled_id.is_(None),
            )
            .order_by(_PARTS.c.part, _PARTS.c.id)
        )
    )


def _insert(conn: Connection, part: Part, now: datetime) -> None:
    conn.execute(
        _PARTS.insert().values(
            provider=part.provider,
            part_id=part.part_id,
            group_key=part.group_key,
            part=part.number,
            total=part.total,
            sender=part.sender,
            recipient=part.recipient,
            body=part.body,
            raw=json.dumps(part.raw, ensure_ascii=False, sort_keys=True),
            received_at=now,
        )
    )


def assembled_id(provider: str, group_key: str, part_ids: Sequence[str]) -> str:
    """The joined message's provider id: a function of the group and its parts' ids only."""
    material = "\n".join([provider, group_key, *sorted(part_ids)])
    return "concat-" + hashlib.sha256(material.encode("utf-8")).hexdigest()[:40]


def _seal(conn: Connection, provider: str, rows: Sequence[Row[Any]]) -> InboundSms:
    message_id = assembled_id(provider, rows[0].group_key, [row.part_id for row in rows])
    conn.execute(
        update(_PARTS)
        .where(_PARTS.c.id.in_([row.id for row in rows]))
        .values(assembled_id=message_id)
    )
    return _message(provider, message_id, rows)


def _rebuild(conn: Connection, provider: str, message_id: str) -> InboundSms:
    rows = conn.execute(
        select(_PARTS)
        .where(_PARTS.c.provider == provider, _PARTS.c.assembled_id == message_id)
        .order_by(_PARTS.c.part, _PARTS.c.id)
    ).all()
    return _message(provider, message_id, rows)


def _message(provider: str, message_id: str, rows: Sequence[Row[Any]]) -> InboundSms:
    """The joined text: parts in order, MISSING where one never came. Every part's own
    parameters are kept in `raw` as evidence."""
    by_number = {row.part: row for row in rows}
    total = rows[0].total
    body = "".join(by_number[n].body if n in by_number else MISSING for n in range(1, total + 1))
    raw = {
        "parts": json.dumps([json.loads(row.raw) for row in rows], ensure_ascii=False),
        "concat-total": str(total),
    }
    missing = [str(n) for n in range(1, total + 1) if n not in by_number]
    if missing:
        raw["concat-missing"] = ",".join(missing)
    first = rows[0]
    return InboundSms(
        provider,
        message_id,
        first.sender,
        first.recipient,
        body,
        raw,
        signature_checked=True,
        parts=len(by_number),  # each part that came was a webhook, and is billed
    )


def flush_stale(engine: Engine, now: datetime, older_than: timedelta) -> list[InboundSms]:
    """Seal the texts whose missing parts have not come for `older_than`, as they are.

    A part can be lost for good (the sender's network, a provider giving up): rather than
    never deciding on the text, it is taken with MISSING in the gaps. The caller `receive`s
    what this returns (see `receive_stale_parts`).
    """
    cutoff = now - older_than
    with engine.connect() as conn:
        stale = conn.execute(
            select(_PARTS.c.provider, _PARTS.c.group_key)
            .where(_PARTS.c.assembled_id.is_(None))
            .group_by(_PARTS.c.provider, _PARTS.c.group_key)
            .having(func.max(_PARTS.c.received_at) < cutoff)
        ).all()
    sealed = []
    for provider, group_key in stale:
        with engine.begin() as conn:
            _lock(conn, provider, group_key)
            rows = _open_rows(conn, provider, group_key)
            if rows and max(row.received_at for row in rows) < cutoff:
                sealed.append(_seal(conn, provider, rows))
    return sealed


def receive_part(service: Service, part: Part) -> int:
    """Store a part and decide on every text it completes. Returns how many were replied to
    (so that the web layer can wake the worker)."""
    texts = store_part(service.engine, part, service.clock.now())
    return sum(receive(service, sms).reply_id is not None for sms in texts)


def receive_stale_parts(service: Service, older_than: timedelta = timedelta(hours=1)) -> int:
    """Decide on the texts that will never be whole (see `flush_stale`); run it now and then
    (the worker's loop or a maintenance command). Returns how many texts were received."""
    texts = flush_stale(service.engine, service.clock.now(), older_than)
    for sms in texts:
        receive(service, sms)
    return len(texts)
