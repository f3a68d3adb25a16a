"""Incidents for the dashboard: the list, and one incident's timeline, senders and clusters.

Everything about one incident is read through the (incident_id, id) index that migration
0004 adds to `messages`, so an old incident's page does not scan the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from antirelou import models
from antirelou.outbox import ReplyStatus
from antirelou.service import Service
from antirelou.web.insights import IncidentBrief, Series, Span, brief, series
from antirelou.web.reads import reader

m, i, r = models.messages, models.incidents, models.replies
SAMPLE = 20_000  # top senders and clusters look at the incident's latest texts


@dataclass(frozen=True)
class IncidentRow:
    brief: IncidentBrief
    closed_at: datetime | None
    closed_by: str | None
    legal_hold: bool
    texts: int

    @property
    def id(self) -> int:
        return self.brief.id

    @property
    def open(self) -> bool:
        return self.closed_at is None


@dataclass(frozen=True)
class Cluster:
    text: str
    senders: int
    texts: int


@dataclass
class IncidentDetail:
    row: IncidentRow
    timeline: Series
    top_senders: list[tuple[int, str, int]] = field(default_factory=list)  # (msg id, no., n)
    clusters: list[Cluster] = field(default_factory=list)
    held: int = 0
    decisions: dict[str, int] = field(default_factory=dict)


def _texts_of() -> Any:
    return select(func.count()).where(m.c.incident_id == i.c.id).correlate(i).scalar_subquery()


def incident_rows(service: Service, limit: int = 100) -> list[IncidentRow]:
    query = select(i, _texts_of().label("n")).order_by(i.c.id.desc()).limit(limit)
    with reader(service).connect() as conn:
        return [_incident(row) for row in conn.execute(query)]


def _incident(row: Any) -> IncidentRow:
    return IncidentRow(
        brief(row),
        row.closed_at,
        row.closed_by,
        bool(row.legal_hold),
        int(row.n),
    )


def incident_detail(service: Service, incident_id: int) -> IncidentDetail | None:
    query = select(i, _texts_of().label("n")).where(i.c.id == incident_id)
    with reader(service).connect() as conn:
        found = conn.execute(query).first()
        if found is None:
            return None
        row = _incident(found)
        detail = IncidentDetail(row, Series("hour", 1, [], [], []))
        detail.top_senders = _top_senders(conn, incident_id)
        detail.clusters = _clusters(conn, incident_id)
        detail.decisions = _decisions(conn, incident_id)
        detail.held = _held(conn, incident_id)
    detail.timeline = _timeline(service, row)  # its own connection: never nest them
    return detail


def _timeline(service: Service, row: IncidentRow) -> Series:
    """Per-minute traffic from 10 minutes before the incident to its end (or now)."""
    end = row.closed_at or service.clock.now()
    begin = row.brief.opened_at - timedelta(minutes=10)
    span: Span = "hour" if end - begin <= timedelta(hours=6) else "week"
    return series(service, span, until=end, since=begin)


def _recent(incident_id: int) -> Any:
    """The incident's last SAMPLE texts: a raid of a million texts costs what 20,000 do.
    (A subquery with a LIMIT is not flattened, so SQLite walks the incident's index.)"""
    return (
        select(m.c.id, m.c.sender, m.c.body)
        .where(m.c.incident_id == incident_id)
        .order_by(m.c.id.desc())
        .limit(SAMPLE)
        .subquery()
    )


def _top_senders(conn: Connection, incident_id: int) -> list[tuple[int, str, int]]:
    recent = _recent(incident_id)
    n = func.count().label("n")
    rows = conn.execute(
        select(func.max(recent.c.id), recent.c.sender, n)
        .group_by(recent.c.sender)
        .order_by(n.desc())
        .limit(10)
    )
    return [(int(mid), str(sender), int(count)) for mid, sender, count in rows]


def _clusters(conn: Connection, incident_id: int) -> list[Cluster]:
    """Texts sent by several senders word for word (case and spaces aside): copy-paste."""
    recent = _recent(incident_id)
    senders = func.count(recent.c.sender.distinct()).label("senders")
    rows = conn.execute(
        select(func.min(recent.c.body), senders, func.count())
        .group_by(func.lower(func.trim(recent.c.body)))
        .having(senders >= 2)
        .order_by(senders.desc())
        .limit(10)
    )
    return [Cluster(str(body), int(n_senders), int(n)) for body, n_senders, n in rows]


def _decisions(conn: Connection, incident_id: int) -> dict[str, int]:
    rows = conn.execute(
        select(m.c.decision, func.count())
        .where(m.c.incident_id == incident_id)
        .group_by(m.c.decision)
    )
    return {str(decision): int(n) for decision, n in rows}


def _held(conn: Connection, incident_id: int) -> int:
    """Held replies of the incident, found from the (small) set of held replies."""
    of_incident = (
        select(m.c.id)
        .where(m.c.id == r.c.message_id, m.c.incident_id == incident_id)
        .correlate(r)
        .exists()
    )
    query = select(func.count()).where(r.c.status == ReplyStatus.HELD, of_incident)
    return int(conn.execute(query).scalar_one())
