"""The signature gate: forged Twilio, Plivo and Android gateway webhooks never reach the app;
everything else does, intact, with what the gate verified."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from antirelou.providers import android, plivo, vonage
from antirelou.providers.twilio import compute_signature
from antirelou.web.gate import SignatureGate
from antirelou.web.signed import VERIFIED
from tests.helpers import make_settings

PUBLIC_URL = "https://decoy.example.org"
TOKEN = "gate-test-token"
FORM = "application/x-www-form-urlencoded"
PARAMS = {"MessageSid": "SM" + "a" * 32, "From": "+33612345678", "To": "+33939000021", "Body": "x"}


class Recorder:
    """The app behind the gate: records what reached it and the body it read."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.verified: list[Any] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if VERIFIED in scope:
            self.verified.append(scope[VERIFIED])
        body = b""
        while True:
            message: Message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"reached"})


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def gated(recorder: Recorder) -> TestClient:
    settings = make_settings(
        "sqlite://",
        twilio={"account_sid": "AC" + "0" * 32, "auth_token": TOKEN},
        plivo={"auth_id": "MA" + "0" * 18, "auth_token": TOKEN},
        android={"signing_key": TOKEN},
        vonage={"signature_secret": TOKEN, "signature_method": "sha256"},
    )
    gate = SignatureGate(recorder, settings)
    return TestClient(gate)


def signed(path: str, params: dict[str, str], token: str = TOKEN) -> dict[str, str]:
    return {
        "Content-Type": FORM,
        "X-Twilio-Signature": compute_signature(PUBLIC_URL + path, params, token),
    }


@pytest.mark.parametrize(
    "path", ["/webhooks/twilio/sms", "/webhooks/twilio/status", "/webhooks/twilio/voice"]
)
def test_a_forged_webhook_never_reaches_the_app(
    gated: TestClient, recorder: Recorder, path: str
) -> None:
    for headers in (signed(path, PARAMS, token="not-the-token"), {"Content-Type": FORM}):
        response = gated.post(path, content=urlencode(PARAMS), headers=headers)
        assert response.status_code == 403
        assert response.json() == {"detail": "missing or invalid X-Twilio-Signature"}
    assert recorder.bodies == []


def test_a_signed_webhook_reaches_the_app_with_its_body(
    gated: TestClient, recorder: Recorder
) -> None:
    path = "/webhooks/twilio/sms"
    body = urlencode(PARAMS)
    response = gated.post(path, content=body, headers=signed(path, PARAMS))
    assert response.text == "reached"
    assert recorder.bodies == [body.encode()]
    assert recorder.verified == [list(PARAMS.items())]  # the route need not check again


PLIVO = {"From": "33612345678", "To": "33939000021", "Text": "x", "MessageUUID": "a" * 36}


def plivo_signed(path: str, token: str = TOKEN, nonce: str = "12345") -> dict[str, str]:
    signature = plivo.compute_signature("POST", PUBLIC_URL + path, PLIVO, nonce, token)
    return {
        "Content-Type": FORM,
        "X-Plivo-Signature-V3": signature,
        "X-Plivo-Signature-V3-Nonce": nonce,
    }


@pytest.mark.parametrize("path", ["/webhooks/plivo/sms", "/webhooks/plivo/status"])
def test_a_forged_plivo_webhook_never_reaches_the_app(
    gated: TestClient, recorder: Recorder, path: str
) -> None:
    for headers in (plivo_signed(path, token="not-the-token"), {"Content-Type": FORM}):
        response = gated.post(path, content=urlencode(PLIVO), headers=headers)
        assert response.status_code == 403
        assert response.json() == {"detail": "missing or invalid X-Plivo-Signature-V3"}
    assert recorder.bodies == []
    response = gated.post(path, content=urlencode(PLIVO), headers=plivo_signed(path))
    assert response.text == "reached"
    assert recorder.verified == [list(PLIVO.items())]


EVENT = json.dumps({"event": "sms:received", "payload": {"message": "x"}}).encode()


def android_signed(body: bytes, key: str = TOKEN, age: int = 0) -> dict[str, str]:
    stamp = str(int(time.time()) - age)
    return {
        "Content-Type": "application/json",
        "X-Signature": android.compute_signature(body, stamp, key),
        "X-Timestamp": stamp,
    }


@pytest.mark.parametrize("path", ["/webhooks/android/sms", "/webhooks/android/status"])
def test_a_forged_or_stale_android_webhook_never_reaches_the_app(
    gated: TestClient, recorder: Recorder, path: str
) -> None:
    refusals = [
        (android_signed(EVENT, key="not-the-key"), "missing or invalid X-Signature"),
        ({"Content-Type": "application/json"}, "missing or invalid X-Signature"),
        (android_signed(EVENT, age=3600), "stale or missing X-Timestamp"),
    ]
    for headers, detail in refusals:
        response = gated.post(path, content=EVENT, headers=headers)
        assert response.status_code == 403
        assert response.json() == {"detail": detail}
    assert recorder.bodies == []
    response = gated.post(path, content=EVENT, headers=android_signed(EVENT))
    assert response.text == "reached"
    assert recorder.verified == [EVENT]


def vonage_signed(secret: str = TOKEN, age: int = 0) -> dict[str, str]:
    params = {"msisdn": "33612345678", "to": "33939000021", "messageId": "0A00000012345678"}
    params |= {"text": "x", "type": "text", "timestamp": str(int(time.time()) - age)}
    return params | {"sig": vonage.compute_signature(params, secret, "sha256")}


@pytest.mark.parametrize("path", ["/webhooks/vonage/inbound", "/webhooks/vonage/status"])
def test_a_forged_or_stale_vonage_webhook_never_reaches_the_app_by_get_or_post(
    gated: TestClient, recorder: Recorder, path: str
) -> None:
    unsigned = {k: v for k, v in vonage_signed().items() if k != "sig"}
    refusals = [
        (vonage_signed(secret="not-the-secret"), "missing or invalid Vonage signature (sig)"),
        (unsigned, "missing or invalid Vonage signature (sig)"),
        (vonage_signed(age=3 * 86400), "stale or missing Vonage timestamp"),
    ]
    for params, detail in refusals:
        by_get = gated.get(path, params=params)
        by_post = gated.post(path, content=urlencode(params), headers={"Content-Type": FORM})
        by_json = gated.post(path, json=params)
        for response in (by_get, by_post, by_json):
            assert response.status_code == 403
            assert response.json() == {"detail": detail}
    assert recorder.bodies == []
    params = vonage_signed()
    assert gated.get(path, params=params).text == "reached"
    assert gated.post(path, json=params).text == "reached"
    assert recorder.verified == [params, params]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/json", b'{"Body": "x"}'), (FORM, b"%ff=\xff"), (FORM, b"no-equals-sign")],
)
def test_a_body_the_gate_cannot_decode_goes_on_for_the_route_to_refuse(
    gated: TestClient, recorder: Recorder, content_type: str, body: bytes
) -> None:
    response = gated.post(
        "/webhooks/twilio/sms", content=body, headers={"Content-Type": content_type}
    )
    assert response.text == "reached"
    assert recorder.bodies == [body]


def test_other_routes_pass_untouched(gated: TestClient, recorder: Recorder) -> None:
    response = gated.post(
        "/webhooks/vonage/unknown", content=b"anything", headers={"Content-Type": FORM}
    )
    assert response.text == "reached"
    assert gated.get("/webhooks/twilio/sms").text == "reached"
    assert recorder.bodies == [b"anything", b""]


def test_a_body_over_the_limit_is_left_to_the_body_guard(
    gated: TestClient, recorder: Recorder
) -> None:
    path = "/webhooks/twilio/sms"
    big = urlencode({**PARAMS, "Body": "x" * 70_000})  # over the default 64 KiB
    response = gated.post(path, content=big, headers=signed(path, PARAMS))
    assert response.text == "reached"  # not read by the gate: BodyGuard refuses it in the app
    assert recorder.bodies == [big.encode()]


def test_a_body_that_takes_too_long_gets_408(recorder: Recorder) -> None:
    settings = make_settings("sqlite://", web={"body_timeout": 0.2})
    gate = SignatureGate(recorder, settings)
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/webhooks/twilio/sms",
        "headers": [(b"content-type", FORM.encode()), (b"content-length", b"10")],
    }
    sent: list[Message] = []

    async def trickle() -> Message:
        await asyncio.sleep(5)
        return {"type": "http.request", "body": b"x" * 10, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(gate(scope, trickle, send))
    assert sent[0]["status"] == 408
    assert recorder.bodies == []


def test_the_app_puts_the_gate_in_front_of_everything(app: FastAPI) -> None:
    assert isinstance(app.build_middleware_stack(), SignatureGate)


# --- the lane: a verified inbound text is taken without the framework --------------------


class Taker:
    """An AppState stand-in whose receive() records texts, failing the first `fail` times."""

    def __init__(self, fail: int = 0) -> None:
        self.texts: list[Any] = []
        self.fail = fail

    async def receive(self, sms: Any) -> None:
        if self.fail:
            self.fail -= 1
            raise OSError("disk full")
        self.texts.append(sms)


def lane_gate(recorder: Recorder, taker: Taker) -> TestClient:
    settings = make_settings(
        "sqlite://", twilio={"account_sid": "AC" + "0" * 32, "auth_token": TOKEN}
    )
    return TestClient(SignatureGate(recorder, settings, state=taker))  # type: ignore[arg-type]


def test_a_verified_text_is_taken_by_the_lane_and_never_reaches_the_app(
    recorder: Recorder,
) -> None:
    taker = Taker()
    path = "/webhooks/twilio/sms"
    response = lane_gate(recorder, taker).post(
        path, content=urlencode(PARAMS), headers=signed(path, PARAMS)
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    (sms,) = taker.texts
    assert (sms.provider_id, sms.sender, sms.signature_checked) == (
        PARAMS["MessageSid"],
        PARAMS["From"],
        True,
    )
    assert recorder.bodies == [], "the framework never saw it"


def test_what_the_lane_cannot_parse_or_store_goes_on_to_the_app(recorder: Recorder) -> None:
    path = "/webhooks/twilio/sms"
    no_sender = {k: v for k, v in PARAMS.items() if k != "From"}
    taker = Taker(fail=1)
    client = lane_gate(recorder, taker)

    malformed = client.post(path, content=urlencode(no_sender), headers=signed(path, no_sender))
    failed = client.post(path, content=urlencode(PARAMS), headers=signed(path, PARAMS))

    assert [malformed.text, failed.text] == ["reached", "reached"], "the route answers them"
    assert recorder.bodies == [urlencode(no_sender).encode(), urlencode(PARAMS).encode()]
    assert recorder.verified == [list(no_sender.items()), list(PARAMS.items())]
    assert taker.texts == []


def test_a_verified_plivo_text_takes_the_lane_too(recorder: Recorder) -> None:
    settings = make_settings("sqlite://", plivo={"auth_id": "MA" + "0" * 18, "auth_token": TOKEN})
    taker = Taker()
    client = TestClient(SignatureGate(recorder, settings, state=taker))  # type: ignore[arg-type]
    path = "/webhooks/plivo/sms"
    text = {**PLIVO, "MessageUUID": "3c5b5a5e-1c3b-11e7-9a07-02b8c7d6d8ab"}
    signature = plivo.compute_signature("POST", PUBLIC_URL + path, text, "67890", TOKEN)
    headers = {
        "Content-Type": FORM,
        "X-Plivo-Signature-V3": signature,
        "X-Plivo-Signature-V3-Nonce": "67890",
    }
    response = client.post(path, content=urlencode(text), headers=headers)
    assert (response.status_code, response.content) == (200, b"")
    assert "content-type" not in response.headers
    (sms,) = taker.texts
    assert (sms.provider, sms.provider_id) == ("plivo", text["MessageUUID"])
    assert recorder.bodies == []
