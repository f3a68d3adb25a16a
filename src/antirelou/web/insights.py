"""What the overview shows, read from the counters the hot path already keeps.

Texts and new senders come from the `traffic` (10-second) and `traffic_hours` tables that
receive() updates anyway, not from counting `messages`: the overview then costs the same
with a thousand or a million stored texts. Money comes from the budget counters.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, func, select

from antirelou import balances, budget, models
from antirelou.outbox import ReplyStatus
from antirelou.service import Service
from antirelou.web.reads import reader

Span = Literal["hour", "day", "week"]
SPANS: dict[str, tuple[timedelta, timedelta]] = {  # span: (length, step)
    "hour": (timedelta(hours=1), timedelta(minutes=1)),
    "day": (timedelta(days=1), timedelta(minutes=15)),
    "week": (timedelta(days=7), timedelta(hours=1)),
}


@dataclass(frozen=True)
class Series:
    """Texts and new senders per step, oldest first; `per_minute` divides by the step."""

    span: str
    step_minutes: int
    starts: list[str]  # ISO times of each step
    texts: list[int]
    new_senders: list[int]


@dataclass(frozen=True)
class IncidentBrief:
    id: int
    line: str
    opened_at: datetime
    opened_by: str
    signals: list[str]
    figures: dict[str, object]


@dataclass(frozen=True)
class LineStatus:
    number: str
    provider: str
    paused: bool
    paused_reason: str | None
    incident: IncidentBrief | None


@dataclass
class Overview:
    now: datetime
    day: str
    texts_today: int = 0
    new_senders_today: int = 0
    replies_sent_today: int = 0
    replied_today: int = 0  # decisions "reply" today (sent or on their way)
    held_today: int = 0
    refused_today: int = 0
    held_now: int = 0
    queued_now: int = 0
    spent_today: int = 0
    reserved_today: int = 0
    daily_cap: int = 0
    pot: int = 0
    pot_used: int = 0
    days_left: float | None = None
    lines: list[LineStatus] = field(default_factory=list)
    # What each provider last said it holds (balances.py): the money a raid really drains.
    provider_balances: list[balances.ProviderBalance] = field(default_factory=list)

    @property
    def pot_left(self) -> int:
        return max(0, self.pot - self.pot_used)

    @property
    def incidents(self) -> list[IncidentBrief]:
        return [line.incident for line in self.lines if line.incident is not None]


def day_start(service: Service, now: datetime) -> tuple[str, datetime]:
    """Today in the first line's timezone (the budget's day), and when it began, in UTC."""
    zone = service.settings.lines[0].zone
    local = now.astimezone(zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return local.date().isoformat(), start.astimezone(UTC)


def overview(service: Service) -> Overview:
    now = service.clock.now()
    day, start = day_start(service, now)
    result = Overview(now=now, day=day)
    with reader(service).connect() as conn:
        _traffic_today(conn, start, result)
        _decisions_today(conn, [x.number for x in service.settings.lines], start, result)
        _replies(conn, start, result)
        _money(service, conn, day, now, result)
        result.lines = line_statuses(service, conn)
    return result


def _traffic_today(conn: Connection, start: datetime, out: Overview) -> None:
    h = models.traffic_hours
    texts, new = conn.execute(
        select(
            func.coalesce(func.sum(h.c.texts), 0), func.coalesce(func.sum(h.c.new_senders), 0)
        ).where(h.c.hour >= start)
    ).one()
    out.texts_today, out.new_senders_today = int(texts), int(new)


def _decisions_today(conn: Connection, lines: list[str], start: datetime, out: Overview) -> None:
    m = models.messages
    rows = conn.execute(  # `line IN` first: the (line, received_at) index serves it
        select(m.c.decision, func.count())
        .where(m.c.line.in_(lines), m.c.received_at >= start)
        .group_by(m.c.decision)
    )
    counts = {str(decision): int(n) for decision, n in rows}
    out.replied_today = counts.get("reply", 0)
    out.held_today = counts.get("hold", 0)
    out.refused_today = counts.get("none", 0)


def _replies(conn: Connection, start: datetime, out: Overview) -> None:
    r, ledger = models.replies, models.ledger
    rows = conn.execute(
        select(r.c.status, func.count())
        .where(r.c.status.in_([ReplyStatus.HELD, ReplyStatus.QUEUED, ReplyStatus.SENDING]))
        .group_by(r.c.status)
    )
    counts = {str(status): int(n) for status, n in rows}
    out.held_now = counts.get(ReplyStatus.HELD, 0)
    out.queued_now = counts.get(ReplyStatus.QUEUED, 0) + counts.get(ReplyStatus.SENDING, 0)
    sent = select(func.count()).where(ledger.c.at >= start, ledger.c.kind == "reply")
    out.replies_sent_today = int(conn.execute(sent).scalar_one())


def _money(service: Service, conn: Connection, day: str, now: datetime, out: Overview) -> None:
    caps = service.caps
    out.spent_today, out.reserved_today = budget.spent_on_day(conn, day)
    snap = budget.snapshot(conn, day, caps)
    out.daily_cap, out.pot, out.pot_used = caps.daily, snap.total_cap, snap.total_used
    out.days_left = budget.days_left(conn, now, caps)
    out.provider_balances = balances.latest(conn)


def line_statuses(service: Service, conn: Connection) -> list[LineStatus]:
    lines, i = models.lines, models.incidents
    paused = {row.number: row for row in conn.execute(select(lines))}
    open_rows = {row.line: row for row in conn.execute(select(i).where(i.c.closed_at.is_(None)))}
    statuses = []
    for line in service.settings.lines:
        row = paused.get(line.number)
        incident = open_rows.get(line.number)
        statuses.append(
            LineStatus(
                line.number,
                line.provider,
                bool(row.paused) if row else False,
                row.paused_reason if row else None,
                brief(incident) if incident is not None else None,
            )
        )
    return statuses


def brief(row: Any) -> IncidentBrief:
    signals = json.loads(row.signals)
    names = [str(s) for s in signals.pop("signals", [])]
    return IncidentBrief(
        int(row.id),
        row.line,
        row.opened_at,
        row.opened_by,
        names,
        signals,
    )


def series(
    service: Service, span: Span, until: datetime | None = None, since: datetime | None = None
) -> Series:
    """Texts and new senders per step over the span, ending now (or at `until`)."""
    length, step = SPANS[span]
    end = until or service.clock.now()
    begin = since or end - length
    with reader(service).connect() as conn:
        rows = _hourly(conn, begin, end) if step >= timedelta(hours=1) else _buckets(conn, begin)
    return _fold(span, rows, begin, end, step)


def _buckets(conn: Connection, begin: datetime) -> list[tuple[datetime, int, int]]:
    t = models.traffic
    rows = conn.execute(
        select(t.c.bucket, func.sum(t.c.texts), func.sum(t.c.new_senders))
        .where(t.c.bucket >= begin)
        .group_by(t.c.bucket)
    )
    return [(when, int(texts), int(new)) for when, texts, new in rows]


def _hourly(conn: Connection, begin: datetime, end: datetime) -> list[tuple[datetime, int, int]]:
    h = models.traffic_hours
    rows = conn.execute(
        select(h.c.hour, func.sum(h.c.texts), func.sum(h.c.new_senders))
        .where(h.c.hour >= begin - timedelta(hours=1), h.c.hour <= end)
        .group_by(h.c.hour)
    )
    return [(when, int(texts), int(new)) for when, texts, new in rows]


def _fold(
    span: str,
    rows: list[tuple[datetime, int, int]],
    begin: datetime,
    end: datetime,
    step: timedelta,
) -> Series:
    """Sum rows into fixed steps aligned on `step` boundaries, empty steps included."""
    seconds = int(step.total_seconds())
    first = int(begin.timestamp()) // seconds * seconds
    count = (int(end.timestamp()) - first) // seconds + 1
    texts: dict[int, int] = defaultdict(int)
    new: dict[int, int] = defaultdict(int)
    for when, n_texts, n_new in rows:
        index = (int(when.timestamp()) - first) // seconds
        if 0 <= index < count:
            texts[index] += n_texts
            new[index] += n_new
    starts = [datetime.fromtimestamp(first + k * seconds, UTC).isoformat() for k in range(count)]
    return Series(
        span,
        seconds // 60,
        starts,
        [texts[k] for k in range(count)],
        [new[k] for k in range(count)],
    )
