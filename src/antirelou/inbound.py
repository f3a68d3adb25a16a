"""receive(): the one way a text enters the service (webhooks, replay, sandbox, tests).

Everything about one text happens in ONE transaction: the message is stored (once, thanks
to the unique provider id), its cost booked, the sender's state updated, the decision taken
and, for a reply, the once-per-window claim, the budget reservation and the outbox row.
Either all of it is committed before the provider gets its 200, or none of it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, or_, select, update

from antirelou import budget, models
from antirelou.dbutil import dialect_insert
from antirelou.keywords import Keyword, keyword_of
from antirelou.money import to_micros
from antirelou.outbox import ReplyStatus
from antirelou.phone import SenderNumber, classify
from antirelou.policy import Action, Decision, Facts, Reason, decide
from antirelou.providers.base import InboundSms
from antirelou.service import ReplyPlan, Service
from antirelou.settings import LineSettings


@dataclass(frozen=True)
class Receipt:
    message_id: int
    duplicate: bool
    decision: Decision
    reply_id: int | None = None


def receive(service: Service, sms: InboundSms) -> Receipt:
    """Store a text exactly once and decide, durably, whether it gets a reply."""
    now = service.clock.now()
    with service.engine.begin() as conn:
        message_id = _store(conn, sms, now)
        if message_id is None:
            return _existing(conn, sms)
        return _process(service, conn, sms, message_id, now)


def _store(conn: Connection, sms: InboundSms, now: datetime) -> int | None:
    """Insert the message; None when the provider already gave us this id."""
    statement = (
        dialect_insert(conn, models.messages)
        .values(
            provider=sms.provider,
            provider_id=sms.provider_id,
            line=sms.recipient,
            sender=sms.sender,
            body=sms.body,
            num_media=sms.num_media,
            received_at=now,
            raw=json.dumps(sms.raw, ensure_ascii=False, sort_keys=True),
            signature_checked=sms.signature_checked,
            decision=Action.NONE.value,
            reasons="[]",
        )
        .on_conflict_do_nothing(index_elements=["provider", "provider_id"])
        .returning(models.messages.c.id)
    )
    found = conn.execute(statement).scalar()
    return None if found is None else int(found)


def _existing(conn: Connection, sms: InboundSms) -> Receipt:
    m = models.messages
    row = conn.execute(
        select(m.c.id, m.c.decision, m.c.reasons).where(
            m.c.provider == sms.provider, m.c.provider_id == sms.provider_id
        )
    ).one()
    reasons = tuple(Reason(r) for r in json.loads(row.reasons))
    return Receipt(int(row.id), True, Decision(Action(row.decision), reasons))


def _process(
    service: Service, conn: Connection, sms: InboundSms, message_id: int, now: datetime
) -> Receipt:
    line = service.line(sms.recipient)
    pricing = service.settings.pricing
    budget.book_inbound(
        conn, at=now, amount=to_micros(pricing.inbound), line=sms.recipient, message_id=message_id
    )
    sender = classify(sms.sender)
    state = _touch_sender(conn, sms.recipient, sender.key, now)
    keyword = keyword_of(sms.body)
    _record_consent(conn, sms.recipient, sender.key, keyword, now)
    decision = decide(_facts(service, conn, line, sender, keyword, state, now))
    reply_id = None
    if decision.action is Action.REPLY and line is not None:
        decision, reply_id = _enqueue(service, conn, line, sender, message_id, decision, now)
    _save_decision(conn, message_id, decision)
    return Receipt(message_id, False, decision, reply_id)


@dataclass(frozen=True)
class _SenderState:
    last_reply_at: datetime | None
    opted_out: bool


def _touch_sender(conn: Connection, line: str, number: str, now: datetime) -> _SenderState:
    """Create or update the sender's row; this also locks it until we commit."""
    s = models.senders
    statement = dialect_insert(conn, s).values(
        line=line, number=number, first_seen=now, last_seen=now, message_count=1
    )
    statement = statement.on_conflict_do_update(
        index_elements=["line", "number"],
        set_={"last_seen": now, "message_count": s.c.message_count + 1},
    ).returning(s.c.last_reply_at, s.c.opted_out_at)
    row = conn.execute(statement).one()
    return _SenderState(row.last_reply_at, row.opted_out_at is not None)


def _record_consent(
    conn: Connection, line: str, number: str, keyword: Keyword | None, now: datetime
) -> None:
    if keyword is None:
        return
    s = models.senders
    opted_out_at = now if keyword is Keyword.OPT_OUT else None
    conn.execute(
        update(s).where(s.c.line == line, s.c.number == number).values(opted_out_at=opted_out_at)
    )


def _facts(
    service: Service,
    conn: Connection,
    line: LineSettings | None,
    sender: SenderNumber,
    keyword: Keyword | None,
    state: _SenderState,
    now: datetime,
) -> Facts:
    day = service.local_day(line, now) if line else now.date().isoformat()
    plan_cost = service.plan(line).cost if line else 0
    return Facts(
        now=now,
        rules=service.rules(line) if line else None,
        line_paused=_paused(conn, line.number) if line else False,
        sender=sender,
        sender_is_line=service.line(sender.key) is not None,
        keyword=keyword,
        opted_out=state.opted_out,
        last_reply_at=state.last_reply_at,
        reply_cost=plan_cost,
        budget=budget.snapshot(conn, day, service.caps),
    )


def _paused(conn: Connection, number: str) -> bool:
    lines = models.lines
    return bool(conn.execute(select(lines.c.paused).where(lines.c.number == number)).scalar())


def _enqueue(
    service: Service,
    conn: Connection,
    line: LineSettings,
    sender: SenderNumber,
    message_id: int,
    decision: Decision,
    now: datetime,
) -> tuple[Decision, int | None]:
    """Enforce the decision with the database guards, then write the outbox row.

    The claim and the reservation run in a savepoint: if the money is not there, the claim
    is undone too, so the sender can still be answered once the budget allows.
    """
    plan = service.plan(line)
    day = service.local_day(line, now)
    savepoint = conn.begin_nested()
    if not _claim(conn, line, sender.key, now):
        savepoint.rollback()
        return decision.refused(Reason.ALREADY_REPLIED), None
    refusal = budget.reserve(conn, day, plan.cost, service.caps)
    if refusal is not None:
        savepoint.rollback()
        return decision.refused(refusal), None
    savepoint.commit()
    reply_id = _insert_reply(conn, line, sender.key, message_id, decision, day, now, plan)
    return decision, reply_id


def _claim(conn: Connection, line: LineSettings, number: str, now: datetime) -> bool:
    """Take the sender's reply slot for this window: the atomic once-only guard."""
    s = models.senders
    cutoff = now - line.reply_window
    result = conn.execute(
        update(s)
        .where(s.c.line == line.number, s.c.number == number)
        .where(or_(s.c.last_reply_at.is_(None), s.c.last_reply_at <= cutoff))
        .values(last_reply_at=now)
    )
    return result.rowcount == 1


def _insert_reply(
    conn: Connection,
    line: LineSettings,
    recipient: str,
    message_id: int,
    decision: Decision,
    day: str,
    now: datetime,
    plan: ReplyPlan,
) -> int:
    statement = models.replies.insert().values(
        message_id=message_id,
        line=line.number,
        recipient=recipient,
        claimed_at=now,
        body=plan.body,
        encoding=plan.encoding,
        segments=plan.segments,
        reserved_micros=plan.cost,
        budget_day=day,
        status=ReplyStatus.QUEUED.value,
        due_at=decision.due_at or now,
        attempts=0,
        maybe_sent=False,
        created_at=now,
        updated_at=now,
    )
    return int(conn.execute(statement.returning(models.replies.c.id)).scalar_one())


def _save_decision(conn: Connection, message_id: int, decision: Decision) -> None:
    m = models.messages
    conn.execute(
        update(m)
        .where(m.c.id == message_id)
        .values(
            decision=decision.action.value,
            reasons=json.dumps([r.value for r in decision.reasons]),
        )
    )
