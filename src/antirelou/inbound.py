"""receive(): the one way a text enters the service (webhooks, replay, sandbox, tests).

Everything about one text happens in ONE transaction: the message is stored (once, thanks
to the unique provider id), its cost booked, the sender's state and the raid detectors
updated, the decision taken and, for a reply, the once-per-window claim, the budget
reservation and the outbox row. Either all of it is committed before the provider gets its
200, or none of it is. Statements are built once: every text goes through here.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, case, or_, select, update

from antirelou import alerts, budget, floods, models
from antirelou.dbutil import Savepoint, db_time, dialect_insert, driver_execute
from antirelou.detect.abuse import AbuseVerdict
from antirelou.detect.numbers import shape
from antirelou.encoding import parts
from antirelou.evidence import hooks as evidence
from antirelou.keywords import Keyword, keyword_of
from antirelou.killswitch import PAUSED_COLUMN
from antirelou.outbox import ReplyStatus
from antirelou.phone import SenderNumber, classify
from antirelou.policy import Action, Decision, Facts, Mode, Reason, decide
from antirelou.providers.base import InboundSms
from antirelou.service import ReplyPlan, Service
from antirelou.settings import DefenceSettings, LineSettings

m, s, r = models.messages, models.senders, models.replies


@dataclass(frozen=True)
class Receipt:
    message_id: int
    duplicate: bool
    decision: Decision
    reply_id: int | None = None
    incident_id: int | None = None


def receive(service: Service, sms: InboundSms) -> Receipt:
    """Store a text exactly once and decide, durably, whether it gets a reply."""
    with service.engine.begin() as conn:
        return receive_in(service, conn, sms)


def receive_in(
    service: Service, conn: Connection, sms: InboundSms, now: datetime | None = None
) -> Receipt:
    """receive() inside the caller's transaction (web/intake.py commits several at once).

    `now` is when the text arrived, when that was earlier (a text parked in the inbox,
    inbox.py): it is decided as of its arrival."""
    sms = without_nul(sms)
    now = service.clock.now() if now is None else now
    message_id = _store(conn, sms, now)
    if message_id is None:
        return _existing(conn, sms)
    return _process(service, conn, sms, message_id, now)


def without_nul(sms: InboundSms) -> InboundSms:
    """PostgreSQL cannot store a NUL character: a text carrying one (a provider's encoding
    slip, or a crafted request) would fail with a 500 and be retried forever. It is kept,
    with U+FFFD (the replacement character) in its place, on every database alike so that
    the evidence and the stored text agree."""
    fields = (sms.provider_id, sms.sender, sms.recipient, sms.body)
    if not any("\x00" in field for field in fields):
        return sms
    clean = [field.replace("\x00", "\ufffd") for field in fields]
    return replace(sms, provider_id=clean[0], sender=clean[1], recipient=clean[2], body=clean[3])


@functools.cache
def _store_statement(dialect: str) -> Any:
    return (
        dialect_insert(dialect, m)
        .on_conflict_do_nothing(index_elements=["provider", "provider_id"])
        .returning(m.c.id)
    )


# json.dumps with these options builds its encoder on each call; every text uses both.
_RAW_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
_LABELS_JSON = json.JSONEncoder(ensure_ascii=False).encode


def _store(conn: Connection, sms: InboundSms, now: datetime) -> int | None:
    """Insert the message; None when the provider already gave us this id."""
    found = driver_execute(
        conn,
        _store_statement(conn.dialect.name),
        {
            "provider": sms.provider,
            "provider_id": sms.provider_id,
            "line": sms.recipient,
            "sender": sms.sender,
            "body": sms.body,
            "num_media": sms.num_media,
            "received_at": now,
            "raw": _RAW_JSON(sms.raw),
            "signature_checked": sms.signature_checked,
            "decision": Action.NONE.value,
            "reasons": "[]",
            "abuse": 0,
            "signals": "[]",
            "incident_id": None,
        },
    ).scalar()
    return None if found is None else int(found)


def _existing(conn: Connection, sms: InboundSms) -> Receipt:
    row = conn.execute(
        select(m.c.id, m.c.decision, m.c.reasons, m.c.incident_id).where(
            m.c.provider == sms.provider, m.c.provider_id == sms.provider_id
        )
    ).one()
    reasons = tuple(Reason(r) for r in json.loads(row.reasons))
    decision = Decision(Action(row.decision), reasons)
    return Receipt(int(row.id), True, decision, incident_id=row.incident_id)


def _process(
    service: Service, conn: Connection, sms: InboundSms, message_id: int, now: datetime
) -> Receipt:
    line = service.line(sms.recipient)
    # Billed per part, as the provider counted them when it says: a raid of long texts
    # costs each of its parts.
    inbound_cost = service.inbound_price(sms.provider) * (sms.parts or parts(sms.body))
    budget.book_inbound(
        conn, at=now, amount=inbound_cost, line=sms.recipient, message_id=message_id
    )
    rules = service.settings.defence
    sender = classify(sms.sender)
    abuse = floods.assess_text(sms.body)
    state = _touch_sender(conn, sms.recipient, sender.key, now, rules, abuse.level >= 2)
    keyword = keyword_of(sms.body)
    _record_consent(conn, sms.recipient, sender.key, keyword, now)
    signals = _signals(conn, sms, sender, state, abuse, now, rules)
    news = floods.IncidentNews()
    watched = _watch(conn, sms, line, now, message_id, signals, news, rules)
    raid_on, incident_id = watched.before is not None, watched.after
    raider = _raider(conn, sms.recipient, sender.key, state, signals, rules, raid_on)
    facts, money = _facts(service, conn, line, sender, keyword, state, now, incident_id, raider)
    decision = decide(facts)
    reply_id = None
    if decision.action is not Action.NONE and line is not None:
        decision, reply_id = _enqueue(service, conn, line, sender, message_id, decision, now, money)
    labels = signals.labels(rules, raid_on)
    _save_decision(conn, message_id, decision, abuse.level, labels, incident_id)
    alerts.incident_news(conn, service, news, now)
    # Last writes of the transaction: the evidence head's lock is held only for the commit.
    evidence.inbound(conn, sms, message_id, decision, incident_id, now, labels)
    evidence.incident_news(conn, news, now)
    return Receipt(message_id, False, decision, reply_id, incident_id)


def _watch(
    conn: Connection,
    sms: InboundSms,
    line: LineSettings | None,
    now: datetime,
    message_id: int,
    signals: floods.TextSignals,
    news: floods.IncidentNews,
    rules: DefenceSettings,
) -> floods.Watched:
    """Count the text in its line's traffic and let the line's incident follow; a raid is
    "on" for this text if an incident was open as it came in (which watch() reads in the
    statement that reads the traffic: a statement less on every text's path)."""
    if line is None:  # a number that is no longer a line: its traffic is not counted
        return floods.Watched(floods.open_incident_id(conn, sms.recipient), None)
    floods.count_traffic(conn, line.number, now, message_id, signals, rules)
    return floods.watch(conn, line.number, now, rules, news)


@dataclass(frozen=True)
class _SenderState:
    last_reply_at: datetime | None
    opted_out: bool
    message_count: int = 1
    recent_count: int = 1
    raider_signals: tuple[Reason, ...] = ()
    blocked_until: datetime | None = None


@functools.cache
def _touch_statement(dialect: str) -> Any:
    """Upsert the sender; `recent_count` restarts when the velocity window has passed."""
    stale = or_(s.c.recent_since.is_(None), s.c.recent_since <= bindparam("velocity_start"))
    statement = dialect_insert(dialect, s)
    return statement.on_conflict_do_update(
        index_elements=["line", "number"],
        set_={
            "last_seen": statement.excluded.last_seen,
            "message_count": s.c.message_count + 1,
            "recent_count": case((stale, 1), else_=s.c.recent_count + 1),
            "recent_since": case((stale, statement.excluded.last_seen), else_=s.c.recent_since),
            "hostile_texts": s.c.hostile_texts + statement.excluded.hostile_texts,
        },
    ).returning(
        s.c.last_reply_at,
        s.c.opted_out_at,
        s.c.message_count,
        s.c.recent_count,
        s.c.raider_signals,
        s.c.blocked_until,
    )


def _touch_sender(
    conn: Connection,
    line: str,
    number: str,
    now: datetime,
    rules: DefenceSettings,
    hostile: bool,
) -> _SenderState:
    """Create or update the sender's row; this also locks it until we commit."""
    (row,) = driver_execute(
        conn,
        _touch_statement(conn.dialect.name),
        {
            "line": line,
            "number": number,
            "first_seen": now,
            "last_seen": now,
            "message_count": 1,
            "recent_count": 1,
            "recent_since": now,
            "hostile_texts": int(hostile),
            "velocity_start": now - rules.velocity_window,
        },
    ).rows
    last_reply_at, opted_out_at, message_count, recent_count, raider_signals, blocked_until = row
    sticky = tuple(Reason(r) for r in json.loads(raider_signals)) if raider_signals else ()
    return _SenderState(
        db_time(last_reply_at),
        opted_out_at is not None,
        message_count,
        recent_count,
        sticky,
        db_time(blocked_until),
    )


def _signals(
    conn: Connection,
    sms: InboundSms,
    sender: SenderNumber,
    state: _SenderState,
    abuse: AbuseVerdict,
    now: datetime,
    rules: DefenceSettings,
) -> floods.TextSignals:
    line, number = sms.recipient, sender.key
    answerable = sender.e164 is not None
    return floods.TextSignals(
        abuse=abuse,
        new_sender=state.message_count == 1,
        cluster_size=floods.cluster_size(
            conn, line, number, sms.body, now, rules.cluster_window, rules.cluster_min_senders
        ),
        velocity=state.recent_count,
        block_size=floods.block_size(conn, line, number, now, rules.block_window)
        if answerable
        else 0,
        virtual=answerable and shape(number).virtual,
    )


def _raider(
    conn: Connection,
    line: str,
    number: str,
    state: _SenderState,
    signals: floods.TextSignals,
    rules: DefenceSettings,
    raid_on: bool,
) -> tuple[Reason, ...]:
    """This text's raider reasons plus those the sender earned before (they stick, unless
    he writes back in his own words after a copy-paste mark)."""
    fresh = signals.raider_reasons(rules, raid_on)
    earned = state.raider_signals
    if earned and signals.clears_paste_mark(earned, rules):
        floods.clear_raider(conn, line, number)
        earned = ()
    if fresh and not earned:
        floods.mark_raider(conn, line, number, fresh)
    return tuple(dict.fromkeys(earned + fresh))


_CONSENT = (
    update(s)
    .where(s.c.line == bindparam("l"), s.c.number == bindparam("n"))
    .values(opted_out_at=bindparam("opted_out_at"))
)


def _record_consent(
    conn: Connection, line: str, number: str, keyword: Keyword | None, now: datetime
) -> None:
    if keyword is None:
        return
    opted_out_at = now if keyword is Keyword.OPT_OUT else None
    driver_execute(conn, _CONSENT, {"l": line, "n": number, "opted_out_at": opted_out_at})


def _facts(
    service: Service,
    conn: Connection,
    line: LineSettings | None,
    sender: SenderNumber,
    keyword: Keyword | None,
    state: _SenderState,
    now: datetime,
    incident_id: int | None,
    raider: tuple[Reason, ...],
) -> tuple[Facts, budget.Totals]:
    """What the policy decides on, and the money as it read it (the day is the line's)."""
    if line is None:
        paused, money = False, budget.read_totals(conn, now.date().isoformat())
    else:
        day, params = service.local_day(line, now), {"line": line.number}
        money, paused = budget.totals_and(conn, day, PAUSED_COLUMN, params)
    facts = Facts(
        now=now,
        rules=service.rules(line) if line else None,
        line_paused=bool(paused),
        sender=sender,
        sender_is_line=service.line(sender.key) is not None,
        keyword=keyword,
        opted_out=state.opted_out,
        last_reply_at=state.last_reply_at,
        reply_cost=service.plan(line).cost if line else 0,
        budget=money.snapshot(service.caps),
        mode=Mode(service.settings.defence.mode),
        incident_open=incident_id is not None,
        raider=raider,
        blocked=state.blocked_until is not None and state.blocked_until > now,
    )
    return facts, money


def _enqueue(
    service: Service,
    conn: Connection,
    line: LineSettings,
    sender: SenderNumber,
    message_id: int,
    decision: Decision,
    now: datetime,
    money: budget.Totals,
) -> tuple[Decision, int | None]:
    """Enforce the decision with the database guards, then write the outbox row.

    The claim and the reservation run in a savepoint: if the money is not there, the claim
    is undone too, so the sender can still be answered once the budget allows. A held
    reply claims the sender's slot but reserves nothing: its release will. `money` is
    what _facts() read, nothing having been booked since.
    """
    plan = service.plan(line)
    day = service.local_day(line, now)
    savepoint = Savepoint(conn)
    every_text = Mode(service.settings.defence.mode) is Mode.EVERY_TEXT
    if not every_text and not _claim(conn, line, sender.key, now):
        savepoint.rollback()
        return decision.refused(Reason.ALREADY_REPLIED), None
    held = decision.action is Action.HOLD
    refusal, used = None, None
    if not held:
        refusal, used = budget.reserve_and_read(conn, day, plan.cost, service.caps, money)
    if refusal is not None:
        savepoint.rollback()
        return decision.refused(refusal), None
    savepoint.commit()
    reply_id = _insert_reply(conn, line, sender.key, message_id, decision, day, now, plan)
    if used is not None:
        alerts.spend_thresholds(conn, service, day, now, used)
    return decision, reply_id


_CLAIM = (
    update(s)
    .where(s.c.line == bindparam("l"), s.c.number == bindparam("n"))
    .where(or_(s.c.last_reply_at.is_(None), s.c.last_reply_at <= bindparam("cutoff")))
    .values(last_reply_at=bindparam("now"))
)


def _claim(conn: Connection, line: LineSettings, number: str, now: datetime) -> bool:
    """Take the sender's reply slot for this window: the atomic once-only guard."""
    params = {"l": line.number, "n": number, "cutoff": now - line.reply_window, "now": now}
    return driver_execute(conn, _CLAIM, params).rowcount == 1


_INSERT_REPLY = r.insert().returning(r.c.id)


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
    held = decision.action is Action.HOLD
    values = {
        "message_id": message_id,
        "line": line.number,
        "recipient": recipient,
        "claimed_at": now,
        "body": plan.body,
        "encoding": plan.encoding,
        "segments": plan.segments,
        "reserved_micros": 0 if held else plan.cost,
        "budget_day": day,
        "status": (ReplyStatus.HELD if held else ReplyStatus.QUEUED).value,
        "held_at": now if held else None,
        "due_at": decision.due_at or now,
        "attempts": 0,
        "maybe_sent": False,
        "created_at": now,
        "updated_at": now,
    }
    return int(driver_execute(conn, _INSERT_REPLY, values).scalar())


_SAVE_DECISION = (
    update(m)
    .where(m.c.id == bindparam("mid"))
    .values(
        decision=bindparam("decision"),
        reasons=bindparam("reasons"),
        abuse=bindparam("abuse"),
        signals=bindparam("signals"),
        incident_id=bindparam("incident"),
    )
)


def _save_decision(
    conn: Connection,
    message_id: int,
    decision: Decision,
    abuse: int,
    labels: list[str],
    incident_id: int | None,
) -> None:
    driver_execute(
        conn,
        _SAVE_DECISION,
        {
            "mid": message_id,
            "decision": decision.action.value,
            "reasons": json.dumps([r.value for r in decision.reasons]),
            "abuse": int(abuse),
            "signals": _LABELS_JSON(labels),
            "incident": incident_id,
        },
    )
