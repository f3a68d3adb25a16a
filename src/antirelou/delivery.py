"""Delivery status callbacks: what happened to a reply after the provider accepted it.

Statuses only move forward (a late "sent" never overwrites "delivered"). The real price,
when the provider reports it, replaces our estimate in the ledger; a reply the provider
reports FAILED was not billed, so its estimated cost is given back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update

from antirelou import budget, models, outbox
from antirelou.db import writing
from antirelou.dbutil import driver_execute
from antirelou.money import to_micros
from antirelou.outbox import ReplyStatus
from antirelou.providers.base import DeliveryState, StatusUpdate
from antirelou.service import Service

_RANK = {
    ReplyStatus.SENDING: 0,
    ReplyStatus.SENT: 1,
    ReplyStatus.DELIVERED: 2,
    ReplyStatus.UNDELIVERED: 2,
    ReplyStatus.FAILED: 2,
}
_STATE_TO_STATUS = {
    DeliveryState.QUEUED: ReplyStatus.SENT,  # accepted by the provider, not yet on the air
    DeliveryState.SENT: ReplyStatus.SENT,
    DeliveryState.DELIVERED: ReplyStatus.DELIVERED,
    DeliveryState.UNDELIVERED: ReplyStatus.UNDELIVERED,
    DeliveryState.FAILED: ReplyStatus.FAILED,
}


@dataclass(frozen=True)
class _Reply:
    id: int
    line: str
    recipient: str
    status: ReplyStatus
    cost: int
    budget_day: str


def record_status(service: Service, update_: StatusUpdate, raw: dict[str, str]) -> bool:
    """Store a status callback and apply it; False when no reply of ours has that id."""
    now = service.clock.now()
    # In this process's write turn on SQLite (db.write_turn): several callbacks arrive for
    # each reply, while the intake and the worker write too.
    with writing(service.engine) as conn:
        reply = _find(conn, update_.provider_message_id)
        conn.execute(
            models.status_events.insert().values(
                provider=update_.provider,
                provider_message_id=update_.provider_message_id,
                reply_id=reply.id if reply else None,
                state=update_.state.value,
                error_code=update_.error_code,
                opted_out=update_.opted_out,
                price=update_.price,
                currency=update_.currency,
                received_at=now,
                raw=json.dumps(raw, ensure_ascii=False, sort_keys=True),
            )
        )
        if reply is None:
            return False
        _apply(conn, reply, update_, now, service.settings.pricing.currency)
        if update_.opted_out:
            outbox.mark_opted_out(conn, reply.line, reply.recipient, now)
    return True


def _find(conn: Connection, provider_message_id: str) -> _Reply | None:
    r = models.replies
    row = conn.execute(
        select(r.c.id, r.c.line, r.c.recipient, r.c.status, r.c.cost_micros, r.c.budget_day)
        .where(r.c.provider_message_id == provider_message_id)
        .with_for_update()
    ).first()
    if row is None:
        return None
    return _Reply(row[0], row[1], row[2], ReplyStatus(row[3]), int(row[4] or 0), row[5])


def _apply(
    conn: Connection, reply: _Reply, update_: StatusUpdate, now: datetime, currency: str
) -> None:
    new_status = _STATE_TO_STATUS[update_.state]
    values: dict[str, object] = {"updated_at": now}
    if _RANK.get(new_status, 0) > _RANK.get(reply.status, 3):
        values["status"] = new_status
        values["error_code"] = update_.error_code
    cost = _settled_cost(reply, update_, new_status, currency)
    if cost != reply.cost:
        values["cost_micros"] = cost
        budget.adjust_spend(conn, reply.budget_day, cost - reply.cost)
        conn.execute(
            models.ledger.insert().values(
                at=now,
                kind="reply_adjust",
                amount_micros=cost - reply.cost,
                line=reply.line,
                reply_id=reply.id,
                note=f"{update_.provider} reported {update_.state.value}",
            )
        )
    r = models.replies
    conn.execute(update(r).where(r.c.id == reply.id).values(**values))


def _settled_cost(
    reply: _Reply, update_: StatusUpdate, new_status: ReplyStatus, currency: str
) -> int:
    if update_.price is not None and update_.currency in (None, currency.upper()):
        return to_micros(update_.price)
    if new_status is ReplyStatus.FAILED:
        return 0  # providers do not bill a message that failed before the network took it
    return reply.cost


_e = models.status_events
_EARLY = (
    select(
        _e.c.id,
        _e.c.provider,
        _e.c.state,
        _e.c.error_code,
        _e.c.price,
        _e.c.currency,
        _e.c.opted_out,
    )
    .where(_e.c.provider_message_id == bindparam("pmid"), _e.c.reply_id.is_(None))
    .order_by(_e.c.id)
)


def adopt_early_statuses(
    conn: Connection, provider_message_id: str, currency: str, now: datetime
) -> int:
    """Apply callbacks that arrived before we recorded the send (the provider can be faster
    than our own commit). Returns how many were applied. Runs after every send, and almost
    always finds none: that case costs one indexed lookup (migration 0019)."""
    rows = driver_execute(conn, _EARLY, {"pmid": provider_message_id}).rows
    if not rows:
        return 0
    reply = _find(conn, provider_message_id)
    if reply is None:
        return 0
    for event_id, provider, state, error_code, price, price_currency, opted_out in rows:
        update_ = StatusUpdate(
            provider,
            provider_message_id,
            DeliveryState(state),
            error_code,
            price=price,
            currency=price_currency,
            opted_out=bool(opted_out),
        )
        _apply(conn, reply, update_, now, currency)
        if update_.opted_out:
            outbox.mark_opted_out(conn, reply.line, reply.recipient, now)
        reply = _find(conn, provider_message_id) or reply
        conn.execute(update(_e).where(_e.c.id == event_id).values(reply_id=reply.id))
    return len(rows)
