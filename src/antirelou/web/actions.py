"""Operator actions that antirelou.operations lacks; each one audited in its transaction.

Same rule as operations.py: the change and its audit-log row commit together, so what was
done and who did it never disagree. Money still goes through budget.reserve, so releasing a
held reply by hand cannot pass a cap either.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update

from antirelou import budget, models
from antirelou.encoding import segment
from antirelou.operations import OperationError, audit
from antirelou.outbox import ReplyStatus
from antirelou.service import Service
from antirelou.web import overrides
from antirelou.web.auth_tables import sender_holds
from antirelou.web.overrides import LiveSettings
from antirelou.web.reads import reader

FOREVER = datetime(9999, 1, 1, tzinfo=UTC)
s, r, i = models.senders, models.replies, models.incidents


def _sender_exists(conn: Connection, line: str, number: str) -> None:
    found = conn.execute(select(s.c.number).where(s.c.line == line, s.c.number == number))
    if found.first() is None:
        raise OperationError(f"no sender {number} on {line}")


def block_sender(
    service: Service, line: str, number: str, until: datetime | None, actor: str
) -> None:
    """No reply to this sender until `until` (None: for good). Texts are still stored, and a
    reply held for him is cancelled at the next release round."""
    now = service.clock.now()
    if until is not None and until <= now:
        raise OperationError("the block must end in the future")
    with service.engine.begin() as conn:
        _sender_exists(conn, line, number)
        conn.execute(
            update(s)
            .where(s.c.line == line, s.c.number == number)
            .values(blocked_until=until or FOREVER)
        )
        audit(conn, actor, "sender_block", number, now, line=line, until=until or "forever")


def unblock_sender(service: Service, line: str, number: str, actor: str) -> None:
    now = service.clock.now()
    with service.engine.begin() as conn:
        _sender_exists(conn, line, number)
        conn.execute(
            update(s).where(s.c.line == line, s.c.number == number).values(blocked_until=None)
        )
        audit(conn, actor, "sender_unblock", number, now, line=line)


def set_sender_hold(
    service: Service, line: str, number: str, on: bool, note: str, actor: str
) -> None:
    """Legal hold: keep this sender's texts whatever the retention (a complaint is filed)."""
    now = service.clock.now()
    h = sender_holds
    with service.engine.begin() as conn:
        _sender_exists(conn, line, number)
        conn.execute(h.delete().where(h.c.line == line, h.c.number == number))
        if on:
            conn.execute(
                h.insert().values(line=line, number=number, set_at=now, set_by=actor, note=note)
            )
        audit(conn, actor, "legal_hold" if on else "legal_hold_end", number, now, note=note)


def set_incident_hold(service: Service, incident_id: int, on: bool, actor: str) -> None:
    now = service.clock.now()
    with service.engine.begin() as conn:
        done = conn.execute(update(i).where(i.c.id == incident_id).values(legal_hold=on))
        if done.rowcount != 1:
            raise OperationError(f"no incident {incident_id}")
        action = "legal_hold" if on else "legal_hold_end"
        audit(conn, actor, action, f"incident:{incident_id}", now)


def _held_row(conn: Connection, reply_id: int) -> Any:
    row = conn.execute(
        select(r.c.id, r.c.line, r.c.recipient, r.c.status).where(r.c.id == reply_id)
    ).first()
    if row is None or row.status != ReplyStatus.HELD:
        raise OperationError(f"reply {reply_id} is not held")
    return row


def release_held_reply(service: Service, reply_id: int, actor: str) -> None:
    """Send one held reply now, skipping the pace; its money is reserved like any reply."""
    now = service.clock.now()
    with service.engine.begin() as conn:
        row = _held_row(conn, reply_id)
        line = service.line(row.line)
        if line is None:
            raise OperationError(f"line {row.line} is no longer configured")
        plan, day = service.plan(line), service.local_day(line, now)
        refused = budget.reserve(conn, day, plan.cost, service.caps)
        if refused is not None:
            raise OperationError(f"not released: {refused.value}")
        conn.execute(
            update(r)
            .where(r.c.id == reply_id, r.c.status == ReplyStatus.HELD)
            .values(
                status=ReplyStatus.QUEUED,
                reserved_micros=plan.cost,
                budget_day=day,
                due_at=now,
                released_at=now,
                updated_at=now,
            )
        )
        audit(conn, actor, "release_held", str(reply_id), now, recipient=row.recipient)


def cancel_held_reply(service: Service, reply_id: int, actor: str) -> None:
    """Never send this held reply (it reserved nothing, so nothing is given back)."""
    now = service.clock.now()
    with service.engine.begin() as conn:
        row = _held_row(conn, reply_id)
        conn.execute(
            update(r)
            .where(r.c.id == reply_id, r.c.status == ReplyStatus.HELD)
            .values(status=ReplyStatus.CANCELLED, error=f"cancelled by {actor}", updated_at=now)
        )
        audit(conn, actor, "cancel_held_one", str(reply_id), now, recipient=row.recipient)


def held_replies(service: Service, limit: int = 100) -> list[Any]:
    query = (
        select(r.c.id, r.c.line, r.c.recipient, r.c.held_at, r.c.message_id)
        .where(r.c.status == ReplyStatus.HELD)
        .order_by(r.c.held_at)
        .limit(limit)
    )
    with reader(service).connect() as conn:
        return list(conn.execute(query))


def edit_reply(live: LiveSettings, number: str, text: str, actor: str) -> None:
    """Change a line's reply. Texts received from now on get it; replies already queued or
    held keep the text they were written with."""
    service = live.service
    line = service.line(number)
    if line is None:
        raise OperationError(f"no line {number}")
    text = overrides.check_reply(text)
    now = service.clock.now()
    before, after = segment(line.reply), segment(text)
    with service.engine.begin() as conn:
        overrides.store(conn, overrides.reply_key(number), text, actor, now)
        audit(
            conn,
            actor,
            "reply_edit",
            number,
            now,
            text=text,
            segments=f"{before.segments} -> {after.segments}",
            encoding=after.encoding.value,
        )
    live.refresh()


def reset_reply(live: LiveSettings, number: str, actor: str) -> None:
    """Back to the reply written in the configuration file."""
    service = live.service
    now = service.clock.now()
    with service.engine.begin() as conn:
        overrides.remove(conn, overrides.reply_key(number))
        audit(conn, actor, "reply_reset", number, now)
    live.refresh()


def edit_caps(live: LiveSettings, daily: float, pot: float, actor: str) -> None:
    """Change the daily cap and the pot. Lowering a cap never cancels what is reserved."""
    service = live.service
    daily, pot = overrides.check_cap(daily), overrides.check_cap(pot)
    now = service.clock.now()
    old = service.settings.budget
    with service.engine.begin() as conn:
        overrides.store(conn, overrides.DAILY_CAP, daily, actor, now)
        overrides.store(conn, overrides.POT, pot, actor, now)
        audit(
            conn,
            actor,
            "caps_edit",
            None,
            now,
            daily_cap=f"{old.daily_cap} -> {daily}",
            total=f"{old.total} -> {pot}",
        )
    live.refresh()


def record(service: Service, actor: str, action: str, target: str | None, **details: Any) -> None:
    """An audit row on its own: logins, logouts, evidence exports."""
    now = service.clock.now()
    with service.engine.begin() as conn:
        audit(conn, actor, action, target, now, **details)
