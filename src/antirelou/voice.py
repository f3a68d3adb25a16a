"""Voice calls: a short spoken message, then hang up — or a rejection that costs nothing.

Men call the decoy number as often as they text it. A call is answered with the line's
message (`<Say>` in the line's language, or a recorded `<Play>`), then `<Hangup/>`. It is
rejected with `<Reject/>` (the caller hears a busy/unavailable tone and the provider bills
nothing) while the line is paused, during an incident, once the caller has already heard
the message `voice_max_plays` times, or when the caps cannot pay for it: an answered call
costs a minute or two of the provider's voice price, and a flood of calls must not spend
past a cap any more than a flood of texts, nor take more than `[budget] voice_share` of a
day's cap, so that it leaves the rest to the replies. Every call is stored, like a text.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from antirelou import alerts, budget, floods, models
from antirelou.db import writing
from antirelou.dbutil import Savepoint
from antirelou.evidence import hooks as evidence
from antirelou.killswitch import line_paused
from antirelou.money import to_micros
from antirelou.service import Service
from antirelou.settings import LineSettings

LANGUAGES = {"fr": "fr-FR", "en": "en-GB", "es": "es-ES", "de": "de-DE", "it": "it-IT"}
WORDS_PER_MINUTE = 150  # a calm speaking pace, to estimate how long the call lasts
VOICE_SHARE_REACHED = "voice_share_reached"  # [budget] voice_share of the daily cap


@dataclass(frozen=True)
class IncomingCall:
    provider: str
    call_id: str
    caller: str
    line: str
    raw: dict[str, str]


@dataclass(frozen=True)
class CallDecision:
    answer: bool
    reasons: tuple[str, ...]


def decide_call(paused: bool, incident: bool, plays: int, max_plays: int) -> CallDecision:
    """Pure: play the message, or reject the call (not billed)."""
    reasons = []
    if paused:
        reasons.append("line_paused")
    if incident:
        reasons.append("incident_open")
    if plays >= max_plays:
        reasons.append("already_heard")
    return CallDecision(not reasons, tuple(reasons) or ("first_calls",))


def twiml(line: LineSettings | None, decision: CallDecision) -> str:
    """The TwiML document for a call (only documented verbs and attributes)."""
    response = ET.Element("Response")
    if line is None or not decision.answer:
        ET.SubElement(response, "Reject", reason="rejected")
    elif line.voice_audio_url:
        ET.SubElement(response, "Play").text = line.voice_audio_url
        ET.SubElement(response, "Hangup")
    else:
        language = LANGUAGES.get(line.language, line.language)
        say = ET.SubElement(response, "Say", voice=line.voice, language=language)
        say.text = line.voice_message
        ET.SubElement(response, "Hangup")
    body = ET.tostring(response, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>' + body


def estimated_cost(line: LineSettings, price_per_minute: float) -> int:
    """Inbound call cost, billed per started minute, from the message's length."""
    minutes = max(1, math.ceil(len(line.voice_message.split()) / WORDS_PER_MINUTE))
    return to_micros(minutes * price_per_minute)


def receive_call(service: Service, call: IncomingCall) -> tuple[LineSettings | None, CallDecision]:
    """Store the call once (a retried webhook replays the first decision) and decide."""
    now = service.clock.now()
    line = service.line(call.line)
    c = models.calls
    with writing(service.engine) as conn:
        existing = conn.execute(
            select(c.c.answered, c.c.reasons).where(
                c.c.provider == call.provider, c.c.call_id == call.call_id
            )
        ).first()
        if existing is not None:
            return line, CallDecision(existing.answered, tuple(json.loads(existing.reasons)))
        decision, incident_id = _decide(service, conn, line, call)
        cost = estimated_cost(line, service.settings.pricing.voice_minute) if line else 0
        if line is not None and decision.answer and cost:
            decision = _reserve(service, conn, decision, cost, service.local_day(line, now))
        billed = cost if decision.answer else 0
        call_row = conn.execute(
            c.insert()
            .values(
                provider=call.provider,
                call_id=call.call_id,
                line=call.line,
                caller=call.caller,
                received_at=now,
                raw=json.dumps(call.raw, ensure_ascii=False, sort_keys=True),
                answered=decision.answer,
                reasons=json.dumps(decision.reasons),
                cost_micros=billed,
                incident_id=incident_id,
            )
            .returning(c.c.id)
        ).scalar_one()
        if line is not None and billed:
            _book(service, conn, line, billed, int(call_row), now)
        if line is not None:
            _watch_flood(service, conn, line, now)
        evidence.call(conn, call, int(call_row), decision, incident_id, billed, now)
    return line, decision


def _reserve(
    service: Service, conn: Connection, decision: CallDecision, cost: int, day: str
) -> CallDecision:
    """Take the call's cost under the caps, as a reply's is taken (budget.reserve), and in
    the day's voice share: the answer stands, or the call is rejected with what refused it."""
    savepoint = Savepoint(conn)
    refusal = budget.reserve(conn, day, cost, service.caps)
    why = None if refusal is None else refusal.value
    share = int(service.caps.daily * service.settings.budget.voice_share)
    if why is None and not budget.reserve_voice(conn, day, cost, share):
        why = VOICE_SHARE_REACHED
    if why is not None:
        savepoint.rollback()
        return CallDecision(False, (why,))
    savepoint.commit()
    return decision


def _book(
    service: Service, conn: Connection, line: LineSettings, cost: int, call_id: int, now: datetime
) -> None:
    """The call is answered: its reservations become spend, in the ledger too."""
    day = service.local_day(line, now)
    budget.commit_voice(conn, day, cost)
    budget.book_call(conn, at=now, amount=cost, line=line.number, call_id=call_id)
    alerts.spend_thresholds(conn, service, day, now)


def _watch_flood(service: Service, conn: Connection, line: LineSettings, now: datetime) -> None:
    """Alert the operators when the line's calls in the last minute reach the threshold."""
    c = models.calls
    recent = conn.execute(
        select(func.count()).where(
            c.c.line == line.number, c.c.received_at > now - floods.RATE_WINDOW
        )
    ).scalar_one()
    if recent >= service.settings.defence.call_flood_per_minute:
        alerts.call_flood(conn, line.number, int(recent), now)


def _decide(
    service: Service, conn: Connection, line: LineSettings | None, call: IncomingCall
) -> tuple[CallDecision, int | None]:
    if line is None:
        return CallDecision(False, ("unknown_line",)), None
    c = models.calls
    plays = conn.execute(
        select(func.count()).where(
            c.c.line == line.number, c.c.caller == call.caller, c.c.answered.is_(True)
        )
    ).scalar_one()
    paused = line_paused(conn, line.number)
    incident_id = floods.open_incident_id(conn, line.number)
    decision = decide_call(paused, incident_id is not None, int(plays), line.voice_max_plays)
    return decision, incident_id
