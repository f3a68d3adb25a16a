"""Voice calls on Twilio: spoken once or twice, then rejected (not billed); TwiML checked."""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from antirelou import budget, models, operations
from antirelou.alerts import subject
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.inbound import receive
from antirelou.policy import Reason
from antirelou.service import Service
from antirelou.voice import IncomingCall, decide_call, receive_call
from antirelou.web.app import create_app
from tests.helpers import alert_payloads, counter, make_settings, sms
from tests.test_webhooks import LINE, SENDER, post_signed, signed_headers

VOICE_PATH = "/webhooks/twilio/voice"

# The verbs we use and the attributes Twilio documents for them (TwiML reference:
# <Say> voice/language/loop, <Play> loop/digits, <Reject> reason=rejected|busy, <Hangup>).
DOCUMENTED = {
    "Response": set(),
    "Say": {"voice", "language", "loop"},
    "Play": {"loop", "digits"},
    "Reject": {"reason"},
    "Hangup": set(),
}


def call_params(n: int, caller: str = SENDER) -> dict[str, str]:
    sid = f"CA{n:032x}"
    return {
        "CallSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": caller,
        "To": LINE,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }


def check_documented(document: str) -> ET.Element:
    assert document.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(document)  # noqa: S314 - our own output
    assert root.tag == "Response"
    for element in root.iter():
        assert element.tag in DOCUMENTED, element.tag
        assert set(element.attrib) <= DOCUMENTED[element.tag], element.attrib
    reject = root.find("Reject")
    if reject is not None:
        assert reject.get("reason") in {"rejected", "busy"}
    return root


def call(client: TestClient, n: int, caller: str = SENDER) -> ET.Element:
    response = post_signed(client, VOICE_PATH, call_params(n, caller))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    return check_documented(response.text)


def verbs(root: ET.Element) -> list[str]:
    return [child.tag for child in root]


def test_a_call_hears_the_message_in_the_line_language_then_hangs_up(
    client: TestClient, hook_service: Service
) -> None:
    root = call(client, 1)
    assert verbs(root) == ["Say", "Hangup"]
    say = root.find("Say")
    assert say is not None
    assert say.get("language") == "fr-FR"
    assert say.get("voice") == "Polly.Lea"
    assert "dit non, c'est non" in (say.text or "")


def test_after_max_plays_the_caller_is_rejected(client: TestClient, hook_service: Service) -> None:
    assert verbs(call(client, 1)) == ["Say", "Hangup"]
    assert verbs(call(client, 2)) == ["Say", "Hangup"]
    assert verbs(call(client, 3)) == ["Reject"]
    assert verbs(call(client, 4, caller="+33687654321")) == ["Say", "Hangup"]
    with hook_service.engine.connect() as conn:
        rows = conn.execute(select(models.calls).order_by(models.calls.c.id)).all()
    assert [r.answered for r in rows] == [True, True, False, True]
    assert rows[2].cost_micros == 0  # a rejected call is not billed
    assert rows[0].cost_micros == 10_000


def test_paused_line_and_incident_reject_calls(client: TestClient, hook_service: Service) -> None:
    operations.set_paused(hook_service, LINE, True, "alice")
    assert verbs(call(client, 1)) == ["Reject"]
    operations.set_paused(hook_service, LINE, False, "alice")
    operations.open_incident(hook_service, LINE, "alice")
    assert verbs(call(client, 2)) == ["Reject"]


def test_a_retried_call_webhook_is_stored_once(client: TestClient, hook_service: Service) -> None:
    for _ in range(3):
        assert verbs(call(client, 7)) == ["Say", "Hangup"]
    with hook_service.engine.connect() as conn:
        assert len(conn.execute(select(models.calls)).all()) == 1


def test_forged_or_malformed_call_writes_nothing(client: TestClient, hook_service: Service) -> None:
    params = call_params(1)
    headers = signed_headers(VOICE_PATH, params, token="wrong")
    assert client.post(VOICE_PATH, content=urlencode(params), headers=headers).status_code == 403
    bad = {**params, "CallSid": ""}
    assert post_signed(client, VOICE_PATH, bad).status_code == 400
    with hook_service.engine.connect() as conn:
        assert conn.execute(select(models.calls)).all() == []


def test_recorded_audio_is_played_instead(hook_service: Service) -> None:
    line = hook_service.settings.lines[0].model_copy(
        update={"voice_audio_url": "https://decoy.example.org/non.mp3"}
    )
    from antirelou.voice import twiml

    root = check_documented(twiml(line, decide_call(False, False, 0, 2)))
    assert verbs(root) == ["Play", "Hangup"]


@pytest.mark.parametrize(
    ("paused", "incident", "plays", "answer"),
    [
        (False, False, 0, True),
        (True, False, 0, False),
        (False, True, 0, False),
        (False, False, 2, False),
    ],
)
def test_call_decision_table(paused: bool, incident: bool, plays: int, answer: bool) -> None:
    assert decide_call(paused, incident, plays, 2).answer is answer


@contextmanager
def capped_service(database_url: str, clock: VirtualClock, **budget: float) -> Iterator[Service]:
    """The Twilio line, calls at 0.01 EUR a minute, under the given [budget]."""
    settings = make_settings(
        database_url,
        lines=[{"number": LINE, "provider": "twilio"}],
        twilio={"account_sid": "AC" + "0" * 32, "auth_token": "test-token"},
        budget={"total": 100.0, **budget},
        pricing={"voice_minute": 0.01},
    )
    service = Service(settings, make_engine(database_url), clock)
    service.sync_lines()
    try:
        yield service
    finally:
        service.dispose()


@pytest.fixture
def capped(database_url: str, clock: VirtualClock) -> Iterator[Service]:
    """A daily cap of three answered calls, all of which calls may take."""
    with capped_service(database_url, clock, daily_cap=0.03, voice_share=1.0) as service:
        yield service


def calls_from(service: Service, callers: list[str]) -> list[list[str]]:
    with TestClient(create_app(service)) as client:
        return [verbs(call(client, n, caller)) for n, caller in enumerate(callers)]


def test_answered_calls_are_paid_under_the_caps_like_replies(capped: Service) -> None:
    """A flood of calls from new numbers cannot spend past the daily cap: each answered
    call takes its cost from the caps, in the counters and the ledger; once the cap is
    reached calls are rejected (not billed), and texts are refused a reply too."""
    callers = [f"+3361234{n:04d}" for n in range(5)]
    assert calls_from(capped, callers) == [["Say", "Hangup"]] * 3 + [["Reject"]] * 2
    with capped.engine.connect() as conn:
        rows = conn.execute(select(models.calls).order_by(models.calls.c.id)).all()
        ledger = conn.execute(
            select(models.ledger.c.amount_micros).where(models.ledger.c.kind == "call")
        ).all()
    assert [json.loads(r.reasons) for r in rows[3:]] == [[Reason.DAILY_CAP.value]] * 2
    assert [r.cost_micros for r in rows] == [10_000] * 3 + [0, 0]
    assert [amount for (amount,) in ledger] == [10_000] * 3
    day = capped.local_day(capped.settings.lines[0], capped.clock.now())
    assert counter(capped, budget.day_key(day)) == (30_000, 0)
    assert counter(capped, budget.TOTAL) == (30_000, 0)
    marks = {(a["what"], a["threshold"]) for a in alert_payloads(capped, "spend_threshold")}
    assert ("daily_cap", 1.0) in marks

    receipt = receive(capped, sms(sender="+33698765432"))
    assert receipt.reply_id is None
    assert Reason.DAILY_CAP in receipt.decision.reasons


def test_calls_take_no_more_than_their_share_of_the_day(
    database_url: str, clock: VirtualClock
) -> None:
    """voice_share 0.25 of a 0.10 EUR day: two calls; the third is rejected while the
    replies to texts still have the rest of the day."""
    with capped_service(database_url, clock, daily_cap=0.10, voice_share=0.25) as service:
        callers = [f"+3361234{n:04d}" for n in range(3)]
        assert calls_from(service, callers) == [["Say", "Hangup"]] * 2 + [["Reject"]]
        with service.engine.connect() as conn:
            last = conn.execute(select(models.calls.c.reasons).order_by(models.calls.c.id.desc()))
            assert json.loads(last.scalars().first()) == ["voice_share_reached"]
        day = service.local_day(service.settings.lines[0], service.clock.now())
        assert counter(service, budget.voice_key(day)) == (20_000, 0)
        assert counter(service, budget.day_key(day)) == (20_000, 0)
        assert receive(service, sms(sender="+33698765432")).reply_id is not None


def test_the_voice_share_holds_under_concurrent_calls(
    database_url: str, clock: VirtualClock
) -> None:
    """Six callers at once, five calls each, on every database: the share (three calls)
    is taken by exactly three, whatever the interleaving."""
    with capped_service(database_url, clock, daily_cap=0.12, voice_share=0.25) as service:
        barrier = threading.Barrier(6)

        def burst(i: int) -> None:
            barrier.wait()
            for j in range(5):
                caller = f"+336{i:02d}{j:02d}1234"
                raw = {"CallSid": f"CA{i:02d}{j:02d}"}
                receive_call(service, IncomingCall("twilio", raw["CallSid"], caller, LINE, raw))

        threads = [threading.Thread(target=burst, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with service.engine.connect() as conn:
            answered = conn.execute(
                select(func.count()).where(models.calls.c.answered.is_(True))
            ).scalar_one()
        assert answered == 3
        day = service.local_day(service.settings.lines[0], service.clock.now())
        assert counter(service, budget.voice_key(day)) == (30_000, 0)


def call_at(service: Service, n: int, caller: str) -> None:
    receive_call(service, IncomingCall("twilio", f"CA{n:032x}", caller, LINE, {"CallSid": "x"}))


def test_a_flood_of_calls_alerts_the_operators_once_an_hour(
    database_url: str, clock: VirtualClock
) -> None:
    """Twenty calls within a minute (the default threshold) from twenty numbers: one
    `call_flood` alert, which the next calls of that hour do not repeat."""
    with capped_service(database_url, clock, daily_cap=10.0) as service:
        for n in range(19):
            clock.advance(timedelta(seconds=3))
            call_at(service, n, f"+3361234{n:04d}")
        assert alert_payloads(service, "call_flood") == [], "19 calls in a minute: no alert"
        for n in range(19, 40):
            clock.advance(timedelta(seconds=2))
            call_at(service, n, f"+3361234{n:04d}")
        (alert,) = alert_payloads(service, "call_flood")
        assert alert["line"] == LINE
        assert alert["calls_last_minute"] == 20
        assert "a flood of calls on" in subject(alert)


def test_calls_spread_over_time_are_no_flood(database_url: str, clock: VirtualClock) -> None:
    with capped_service(database_url, clock, daily_cap=10.0) as service:
        for n in range(60):  # one every 4 s: 15 a minute, for four minutes
            clock.advance(timedelta(seconds=4))
            call_at(service, n, f"+3361234{n:04d}")
        assert alert_payloads(service, "call_flood") == []
