"""Releasing replies held during an incident: the most genuine-looking first, paced.

During an incident new senders are held, not dropped. The worker's tick releases them:
- a held sender is watched for `min_hold` first while the incident lasts, so a raider has
  time to show himself (more texts, insults, a copy-pasted text, a number block);
- senders who turned out to be raiders, opted out, were blocked, or waited past
  `hold_expiry` are cancelled (their reply slot stays taken for the window);
- the others are ranked by a genuineness score and released while the spend released in
  the last hour stays under a pace: `incident_release_pace` of the daily cap per hour while
  the incident is open, `release_pace` after. A sliding-window limit on money (a GCRA in
  spirit) rather than on count, since replies can differ in segments;
- each release reserves its money like any reply: the caps still cannot be passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, func, select, update

from antirelou import budget, floods, models
from antirelou.db import writing
from antirelou.dbutil import Savepoint, db_time, driver_execute, driver_read
from antirelou.detect.numbers import shape
from antirelou.killswitch import line_paused
from antirelou.outbox import ReplyStatus
from antirelou.service import Service
from antirelou.settings import LineSettings

PACE_WINDOW = timedelta(hours=1)
SWEEP = timedelta(minutes=5)  # cancel raiders and expired holds at least this often


@dataclass(frozen=True)
class Held:
    reply_id: int
    recipient: str
    held_at: datetime
    message_count: int
    hostile_texts: int
    raider: bool
    opted_out: bool
    blocked: bool

    def score(self) -> int:
        """Higher looks more genuine: few texts, no hostility, an ordinary mobile number."""
        points = 3 if self.message_count <= 3 else 0
        points += 2 if self.hostile_texts == 0 else 0
        points += 0 if shape(self.recipient).virtual else 2
        return points


@dataclass
class ReleaseReport:
    released: int = 0
    cancelled: int = 0


def release_held(
    service: Service, now: datetime, sweeps: dict[str, datetime] | None = None
) -> ReleaseReport:
    """Release what the pace allows. `sweeps` remembers (per worker, in memory: only an
    optimisation) when each line's held replies were last examined."""
    report = ReleaseReport()
    sweeps = {} if sweeps is None else sweeps
    holding = _lines_holding(service)
    for line in service.settings.lines:
        if line.number not in holding:
            # Nothing held: nothing to release or cancel (this examined the held replies).
            sweeps[line.number] = now
            continue
        with writing(service.engine) as conn:  # the worker's other threads write too
            if not line_paused(conn, line.number):
                _release_line(service, conn, line, now, report, sweeps)
    return report


_LINES_HOLDING = (
    select(models.replies.c.line)
    .where(models.replies.c.status == ReplyStatus.HELD.value)
    .distinct()
)


def _lines_holding(service: Service) -> set[str]:
    """The lines with a held reply: one read on the (status, due_at) index, so a tick
    outside incidents costs no transaction and no sum over the line's replies. Every tick
    asks, so it goes through the driver's cursor, in no transaction (dbutil.driver_read)."""
    return {row[0] for row in driver_read(service.engine, _LINES_HOLDING, {}).rows}


def _release_line(
    service: Service,
    conn: Connection,
    line: LineSettings,
    now: datetime,
    report: ReleaseReport,
    sweeps: dict[str, datetime],
) -> None:
    rules = service.settings.defence
    incident = floods.open_incident_id(conn, line.number) is not None
    pace = rules.incident_release_pace if incident else rules.release_pace
    allowance = int(pace * service.caps.daily) - _released_spend(conn, line.number, now)
    last = sweeps.get(line.number)
    if allowance < service.plan(line).cost and last is not None and now - last < SWEEP:
        return  # nothing can be released yet; cancellations can wait for the next sweep
    sweeps[line.number] = now
    held = _held(conn, line.number, now)
    keep = []
    for candidate in held:
        reason = _cancel_reason(candidate, now, rules.hold_expiry)
        if reason:
            _cancel(conn, candidate.reply_id, reason, now)
            report.cancelled += 1
        elif not incident or candidate.held_at <= now - rules.min_hold:
            keep.append(candidate)
    keep.sort(key=lambda h: (-h.score(), h.held_at))
    _release(service, conn, line, keep, allowance, now, report)


def _release(
    service: Service,
    conn: Connection,
    line: LineSettings,
    ranked: list[Held],
    allowance: int,
    now: datetime,
    report: ReleaseReport,
) -> None:
    plan = service.plan(line)
    day = service.local_day(line, now)
    for candidate in ranked:
        if allowance < plan.cost:
            return
        savepoint = Savepoint(conn)
        if budget.reserve(conn, day, plan.cost, service.caps) is not None:
            savepoint.rollback()
            return  # a cap is reached: the rest waits for tomorrow's budget
        savepoint.commit()
        _queue(conn, candidate.reply_id, plan.cost, day, now)
        allowance -= plan.cost
        report.released += 1


_r, _s = models.replies, models.senders
_HELD = (
    select(
        _r.c.line,
        _r.c.id,
        _r.c.recipient,
        _r.c.held_at,
        _s.c.message_count,
        _s.c.hostile_texts,
        _s.c.raider_signals,
        _s.c.opted_out_at,
        _s.c.blocked_until,
    )
    .join(_s, (_s.c.line == _r.c.line) & (_s.c.number == _r.c.recipient))
    # Every line's held replies (a few, found on the (status, due_at) index), the line
    # picked in Python: with the line in the WHERE, SQLite, which has no statistics,
    # chose the (line, released_at) index and read every reply the line ever had, on each
    # sweep (a year of them, every five minutes of an incident).
    .where(_r.c.status == ReplyStatus.HELD.value)
    .order_by(_r.c.held_at, _r.c.id)
)


def _held(conn: Connection, line: str, now: datetime) -> list[Held]:
    """The line's held replies, oldest first; read on every sweep of a raid's tick."""
    held = []
    for row in driver_execute(conn, _HELD, {}).rows:
        held_on, reply_id, recipient, held_at, count, hostile, raider, opted_out, until = row
        if held_on != line:
            continue
        blocked_until = db_time(until)
        held_since = db_time(held_at)
        assert held_since is not None
        blocked = blocked_until is not None and blocked_until > now
        held.append(
            Held(
                reply_id,
                recipient,
                held_since,
                count,
                hostile,
                raider is not None,
                opted_out is not None,
                blocked,
            )
        )
    return held


def _cancel_reason(held: Held, now: datetime, expiry: timedelta) -> str | None:
    if held.raider:
        return "raider_while_held"
    if held.opted_out:
        return "opted_out_while_held"
    if held.blocked:
        return "blocked_while_held"
    if held.held_at <= now - expiry:
        return "hold_expired"
    return None


def _cancel(conn: Connection, reply_id: int, reason: str, now: datetime) -> None:
    r = models.replies
    conn.execute(
        update(r)
        .where(r.c.id == reply_id, r.c.status == ReplyStatus.HELD)
        .values(status=ReplyStatus.CANCELLED, error=reason, updated_at=now)
    )


def _queue(conn: Connection, reply_id: int, cost: int, day: str, now: datetime) -> None:
    r = models.replies
    conn.execute(
        update(r)
        .where(r.c.id == reply_id, r.c.status == ReplyStatus.HELD)
        .values(
            status=ReplyStatus.QUEUED,
            reserved_micros=cost,
            budget_day=day,
            due_at=now,
            released_at=now,
            updated_at=now,
        )
    )


_RELEASED_SPEND = select(func.coalesce(func.sum(_r.c.reserved_micros), 0)).where(
    _r.c.line == bindparam("line"), _r.c.released_at > bindparam("since")
)


def _released_spend(conn: Connection, line: str, now: datetime) -> int:
    params = {"line": line, "since": now - PACE_WINDOW}
    return int(driver_execute(conn, _RELEASED_SPEND, params).scalar())


def cancel_held(service: Service, line: str | None, now: datetime, reason: str) -> int:
    """Operator action: cancel every held reply (of one line, or all)."""
    r = models.replies
    query = update(r).where(r.c.status == ReplyStatus.HELD)
    if line:
        query = query.where(r.c.line == line)
    with writing(service.engine) as conn:
        result = conn.execute(
            query.values(status=ReplyStatus.CANCELLED, error=reason, updated_at=now)
        )
    return int(result.rowcount)
