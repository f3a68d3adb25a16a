"""Voice calls on Twilio: spoken once or twice, then rejected (not billed); TwiML checked."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from antirelou import models, operations
from antirelou.service import Service
from antirelou.voice import decide_call
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
