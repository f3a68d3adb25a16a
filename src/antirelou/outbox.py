"""Replies waiting to go out, and every state change they go through.

    QUEUED ──claim──► SENDING ──accepted──► SENT ──callback──► DELIVERED | UNDELIVERED | FAILED
      ▲                 │  │
      └──transient──────┘  └──permanent / gave up──► FAILED
    QUEUED ──opted out / operator──► CANCELLED
    HELD (during an incident) ──release, budget reserved──► QUEUED
    HELD ──raider at release / expired / operator──► CANCELLED

A claim is one conditional UPDATE that sets a lease; the network call happens after that
transaction commits (no lock is ever held across a provider call). A row whose lease ran
out while SENDING was perhaps sent: it is reclaimed with `maybe_sent`, and the worker asks
the provider before sending again, so a worker killed mid-send never causes a second text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, or_, select, update

from antirelou import budget, models
from antirelou.dbutil import db_time, driver_execute, driver_read
from antirelou.evidence import hooks as evidence
from antirelou.killswitch import PAUSED_COLUMN


class ReplyStatus(enum.StrEnum):
    HELD = "held"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


OPEN_STATUSES = (ReplyStatus.HELD, ReplyStatus.QUEUED, ReplyStatus.SENDING)


@dataclass(frozen=True)
class ClaimedReply:
    id: int
    line: str
    recipient: str
    body: str
    attempts: int
    maybe_sent: bool
    first_attempt_at: datetime
    reserved_micros: int
    budget_day: str


def _claim_statement() -> Any:
    r = models.replies
    now: Any = bindparam("now")
    due = or_(
        and_(r.c.status == ReplyStatus.QUEUED.value, r.c.due_at <= now),
        and_(r.c.status == ReplyStatus.SENDING.value, r.c.lease_until < now),
    )
    paused = select(models.lines.c.number).where(models.lines.c.paused.is_(True))
    candidates = (
        select(r.c.id)
        .where(due, r.c.line.not_in(paused))
        .order_by(r.c.due_at)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
    )
    return (
        update(r)
        .where(r.c.id.in_(candidates.scalar_subquery()))
        .values(
            # A row still SENDING had a worker die or stall on it: it may have gone out.
            maybe_sent=or_(r.c.maybe_sent, r.c.status == ReplyStatus.SENDING.value),
            status=ReplyStatus.SENDING.value,
            lease_owner=bindparam("owner"),
            lease_until=bindparam("until"),
            attempts=r.c.attempts + 1,
            first_attempt_at=func.coalesce(r.c.first_attempt_at, now),
            updated_at=now,
        )
        .returning(
            r.c.id,
            r.c.line,
            r.c.recipient,
            r.c.body,
            r.c.attempts,
            r.c.maybe_sent,
            r.c.first_attempt_at,
            r.c.reserved_micros,
            r.c.budget_day,
        )
    )


_CLAIM = _claim_statement()


def claim_due(
    conn: Connection, *, now: datetime, owner: str, lease: timedelta, limit: int
) -> list[ClaimedReply]:
    """Lease up to `limit` replies that are due, or whose previous lease ran out.

    One conditional UPDATE; on PostgreSQL the candidates are picked FOR UPDATE SKIP LOCKED
    so concurrent workers never wait on, or take, each other's rows.
    """
    params = {"now": now, "owner": owner, "until": now + lease, "limit": limit}
    return [_claimed(row) for row in driver_execute(conn, _CLAIM, params).rows]


def _claimed(row: tuple[Any, ...]) -> ClaimedReply:
    """A row as the driver returns it (SQLite: booleans as 0/1, times as text)."""
    rid, line, recipient, body, attempts, maybe_sent, first_attempt_at, reserved, day = row
    first = db_time(first_attempt_at)
    assert first is not None  # the claim itself sets it
    return ClaimedReply(
        rid, line, recipient, body, attempts, bool(maybe_sent), first, reserved, day
    )


# The send path's statements, built once: every reply runs them (see dbutil.driver_execute).
_r = models.replies
_MINE = and_(
    _r.c.id == bindparam("rid"),
    _r.c.lease_owner == bindparam("owner"),
    _r.c.status == ReplyStatus.SENDING.value,
)
_RENEW = update(_r).where(_MINE).values(lease_until=bindparam("until"), updated_at=bindparam("now"))
_SENT = (
    update(_r)
    .where(_MINE)
    .values(
        status=ReplyStatus.SENT.value,
        provider_message_id=bindparam("provider_id"),
        cost_micros=bindparam("cost"),
        sent_at=bindparam("now"),
        lease_owner=None,
        lease_until=None,
        error=None,
        updated_at=bindparam("now"),
    )
)


def renew_lease(
    conn: Connection, reply: ClaimedReply, *, owner: str, until: datetime, now: datetime
) -> bool:
    """Extend our lease right before talking to the provider. False when the reply is no
    longer ours: our lease ran out while it waited in our batch and another worker claimed
    it (it may be sending it right now), so we must not send it."""
    params = {"rid": reply.id, "owner": owner, "until": until, "now": now}
    return driver_execute(conn, _RENEW, params).rowcount == 1


def mark_sent(
    conn: Connection,
    reply: ClaimedReply,
    *,
    owner: str,
    provider_message_id: str,
    price: int | None,
    now: datetime,
) -> bool:
    """The provider accepted the reply: book what it costs. False if our lease was lost."""
    cost = reply.reserved_micros if price is None else price
    params = {
        "rid": reply.id,
        "owner": owner,
        "provider_id": provider_message_id,
        "cost": cost,
        "now": now,
    }
    if driver_execute(conn, _SENT, params).rowcount != 1:
        return False
    budget.commit_spend(conn, reply.budget_day, reply.reserved_micros, cost)
    budget.book_reply(conn, at=now, amount=cost, line=reply.line, reply_id=reply.id)
    evidence.reply_sent(conn, reply, provider_message_id, cost, now)
    return True


def mark_retry(
    conn: Connection,
    reply: ClaimedReply,
    *,
    owner: str,
    due_at: datetime,
    maybe_sent: bool,
    error: str,
    code: str | None,
    now: datetime,
) -> None:
    """Put the reply back in the queue for a later attempt."""
    r = models.replies
    conn.execute(
        update(r)
        .where(_MINE)
        .values(
            status=ReplyStatus.QUEUED,
            due_at=due_at,
            maybe_sent=r.c.maybe_sent | maybe_sent,
            error=error,
            error_code=code,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        ),
        {"rid": reply.id, "owner": owner},
    )


def mark_failed(
    conn: Connection,
    reply: ClaimedReply,
    *,
    owner: str,
    error: str,
    code: str | None,
    now: datetime,
    status: ReplyStatus = ReplyStatus.FAILED,
) -> bool:
    """The reply will never go out: give its money back. False if our lease was lost."""
    r = models.replies
    result = conn.execute(
        update(r)
        .where(_MINE)
        .values(
            status=status,
            error=error,
            error_code=code,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        ),
        {"rid": reply.id, "owner": owner},
    )
    if result.rowcount != 1:
        return False
    budget.release(conn, reply.budget_day, reply.reserved_micros)
    return True


def mark_opted_out(conn: Connection, line: str, number: str, now: datetime) -> None:
    """The recipient unsubscribed (STOP, or the provider says so): never text them again."""
    s = models.senders
    conn.execute(
        update(s)
        .where(s.c.line == line, s.c.number == number, s.c.opted_out_at.is_(None))
        .values(opted_out_at=now)
    )


_OPTED_OUT = select(models.senders.c.opted_out_at).where(
    models.senders.c.line == bindparam("line"), models.senders.c.number == bindparam("number")
)


def is_opted_out(conn: Connection, line: str, number: str) -> bool:
    found = driver_execute(conn, _OPTED_OUT, {"line": line, "number": number}).scalar()
    return found is not None


_STOPPED = select(_OPTED_OUT.scalar_subquery(), PAUSED_COLUMN)


def stopped(engine: Engine, line: str, number: str) -> tuple[bool, bool]:
    """Whether the recipient opted out, and whether the line is paused (the kill switch),
    right now: asked before every send, so in one read (a round trip on PostgreSQL), in no
    transaction (dbutil.driver_read)."""
    ((opted_out_at, paused),) = driver_read(engine, _STOPPED, {"line": line, "number": number}).rows
    return opted_out_at is not None, bool(paused)


def give_back(conn: Connection, reply: ClaimedReply, *, owner: str, now: datetime) -> bool:
    """Put a claimed reply back in the queue untried (its line was paused since the claim),
    with the attempt its claim counted: it waits there for the line to resume."""
    r = models.replies
    result = conn.execute(
        update(r)
        .where(_MINE)
        .values(
            status=ReplyStatus.QUEUED,
            attempts=r.c.attempts - 1,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        ),
        {"rid": reply.id, "owner": owner},
    )
    return result.rowcount == 1


def queue_depth(conn: Connection) -> int:
    r = models.replies
    query = select(func.count()).where(r.c.status.in_([s.value for s in OPEN_STATUSES]))
    return int(conn.execute(query).scalar_one())
