"""The messages feed, search, one message and the sender page.

Every query walks an index newest first and stops at a page (keyset paging on the id), so
a page costs the same with a million stored texts. Free-text search cannot use an index on
both databases: it is bounded to a date range (the last 2 days unless the operator widens
it) so a search during a raid cannot stall the dashboard.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, select

from antirelou import models
from antirelou.phone import classify
from antirelou.service import Service
from antirelou.web.auth_tables import sender_holds
from antirelou.web.reads import reader

PAGE = 50
SEARCH_DAYS = 2
m, r, s = models.messages, models.replies, models.senders


@dataclass(frozen=True)
class MessageRow:
    id: int
    line: str
    sender: str
    body: str
    received_at: datetime
    decision: str
    reasons: list[str]
    abuse: int
    signals: list[str]
    incident_id: int | None
    reply_status: str | None
    reply_id: int | None

    @property
    def hostile(self) -> bool:
        """Blurred until clicked: operators should not have to read a flood of hatred."""
        return self.abuse >= 1 or any(not x.startswith("virtual") for x in self.signals)


@dataclass
class Filters:
    q: str = ""
    sender: str = ""
    decision: str = ""
    incident: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None  # keyset: messages with a smaller id
    limit: int = PAGE

    def bounded(self, now: datetime) -> Filters:
        """Free-text search over the last SEARCH_DAYS unless a start date is given."""
        if self.q and self.since is None and self.incident is None:
            self.since = now - timedelta(days=SEARCH_DAYS)
        return self


@dataclass
class Page:
    rows: list[MessageRow]
    filters: Filters
    next_before: int | None = None
    searched_since: datetime | None = None


_ROW = select(
    m.c.id,
    m.c.line,
    m.c.sender,
    m.c.body,
    m.c.received_at,
    m.c.decision,
    m.c.reasons,
    m.c.abuse,
    m.c.signals,
    m.c.incident_id,
    r.c.status.label("reply_status"),
    r.c.id.label("reply_id"),
).outerjoin(r, r.c.message_id == m.c.id)


def _row(row: Any) -> MessageRow:
    return MessageRow(
        int(row.id),
        row.line,
        row.sender,
        row.body,
        row.received_at,
        row.decision,
        list(json.loads(row.reasons)),
        int(row.abuse),
        list(json.loads(row.signals or "[]")),
        row.incident_id,
        row.reply_status,
        row.reply_id,
    )


def _filtered(query: Select[Any], f: Filters) -> Select[Any]:
    conditions = []
    if f.sender:
        conditions.append(m.c.sender == classify(f.sender).key)
    if f.decision in ("reply", "hold", "none"):
        conditions.append(m.c.decision == f.decision)
    if f.incident is not None:
        conditions.append(m.c.incident_id == f.incident)
    if f.since is not None:
        conditions.append(m.c.received_at >= f.since)
    if f.until is not None:
        conditions.append(m.c.received_at < f.until)
    if f.before is not None:
        conditions.append(m.c.id < f.before)
    if f.q:
        pattern = "%" + f.q.lower().replace("%", "").replace("_", "") + "%"
        conditions.append(func.lower(m.c.body).like(pattern))
    return query.where(and_(*conditions)) if conditions else query


def search(service: Service, f: Filters) -> Page:
    f = f.bounded(service.clock.now())
    query = _filtered(_ROW, f).order_by(m.c.id.desc()).limit(f.limit + 1)
    with reader(service).connect() as conn:
        rows = [_row(row) for row in conn.execute(query)]
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    next_before = rows[-1].id if more and rows else None
    return Page(rows, f, next_before, f.since if f.q else None)


def message(service: Service, message_id: int) -> MessageRow | None:
    with reader(service).connect() as conn:
        row = conn.execute(_ROW.where(m.c.id == message_id)).first()
    return None if row is None else _row(row)


def raw_of(service: Service, message_id: int) -> dict[str, Any]:
    """The provider's parameters as received, for moderators (evidence)."""
    with reader(service).connect() as conn:
        raw = conn.execute(select(m.c.raw).where(m.c.id == message_id)).scalar()
    return dict(json.loads(raw)) if raw else {}


@dataclass(frozen=True)
class ReplyRow:
    id: int
    status: str
    created_at: datetime
    sent_at: datetime | None
    segments: int
    cost_micros: int | None
    error: str | None


@dataclass
class SenderPage:
    line: str
    number: str
    message_id: int  # the message the page was reached from: its address
    first_seen: datetime
    last_seen: datetime
    message_count: int
    hostile_texts: int
    raider_signals: list[str]
    blocked_until: datetime | None
    opted_out_at: datetime | None
    last_reply_at: datetime | None
    legal_hold: bool
    messages: list[MessageRow] = field(default_factory=list)
    replies: list[ReplyRow] = field(default_factory=list)


def sender_key(service: Service, message_id: int) -> tuple[str, str] | None:
    """(line, number) of a message's sender. Pages address senders by a message id, so a
    masked viewer never finds the full number in a URL."""
    with reader(service).connect() as conn:
        row = conn.execute(select(m.c.line, m.c.sender).where(m.c.id == message_id)).first()
    return None if row is None else (row.line, row.sender)


def sender_page(service: Service, message_id: int, limit: int = 200) -> SenderPage | None:
    key = sender_key(service, message_id)
    if key is None:
        return None
    line, number = key
    with reader(service).connect() as conn:
        state = conn.execute(select(s).where(s.c.line == line, s.c.number == number)).first()
        held = conn.execute(
            select(sender_holds.c.line).where(
                sender_holds.c.line == line, sender_holds.c.number == number
            )
        ).first()
        rows = conn.execute(
            _ROW.where(m.c.line == line, m.c.sender == number).order_by(m.c.id.desc()).limit(limit)
        )
        history = [_row(row) for row in rows]
        replies = _replies_to(conn, line, number)
    if state is None:
        return None
    return SenderPage(
        line,
        number,
        message_id,
        state.first_seen,
        state.last_seen,
        int(state.message_count),
        int(state.hostile_texts),
        list(json.loads(state.raider_signals or "[]")),
        state.blocked_until,
        state.opted_out_at,
        state.last_reply_at,
        held is not None,
        history,
        replies,
    )


def _replies_to(conn: Any, line: str, number: str) -> list[ReplyRow]:
    rows = conn.execute(
        select(r)
        .join(m, m.c.id == r.c.message_id)
        .where(m.c.line == line, m.c.sender == number)
        .order_by(r.c.id.desc())
    )
    return [
        ReplyRow(
            int(x.id), x.status, x.created_at, x.sent_at, int(x.segments), x.cost_micros, x.error
        )
        for x in rows
    ]
