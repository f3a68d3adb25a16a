"""The Twilio webhooks through the real app: signatures first, then exactly one write.

Requests go through `create_app(service)` with starlette's TestClient (and once through a
real uvicorn server); replies go out through the real worker and adapter to a fake Twilio
API over HTTP. Only the network edge is faked.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select

from antirelou import models, outbox
from antirelou.clock import VirtualClock
from antirelou.providers.twilio import TwilioSender, compute_signature
from antirelou.service import Service
from antirelou.web.twilio_hooks import EMPTY_TWIML
from antirelou.worker import Worker
from tests.fakes.twilio_api import FakeTwilio
from tests.helpers import LINE, count, counter, inbound_billed, replies

# Starlette 1.x warns at import that its TestClient would rather run on httpx2; this venv
# has httpx only, and that works. Silence that one warning (pytest turns warnings into errors).
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "providers"
PUBLIC_URL = "https://decoy.example.org"
ACCOUNT_SID = "AC" + "0" * 32
TOKEN = "test-token"
SENDER = "+33612345678"
SMS_PATH = "/webhooks/twilio/sms"
STATUS_PATH = "/webhooks/twilio/status"
FORM = "application/x-www-form-urlencoded"
TODAY = "day:2017-10-27"  # the conftest clock's day, in the line's timezone
ESTIMATE = 76_270  # one GSM-7 segment at the default outbound price, in micro-euros

T = TypeVar("T")


# --- building requests ------------------------------------------------------------------


def message_sid(n: int) -> str:
    return f"SM{n:032x}"


def inbound_params(sid: str, sender: str = SENDER, body: str = "t'es mignonne") -> dict[str, str]:
    """An inbound SMS webhook as Twilio posts it (blank ToCity included: it is signed too)."""
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "To": LINE,
        "Body": body,
        "NumMedia": "0",
        "ToCity": "",
        "ApiVersion": "2010-04-01",
    }


def status_params(sid: str, status: str, **extra: str) -> dict[str, str]:
    """A delivery status callback for one of our replies."""
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": ACCOUNT_SID,
        "From": LINE,
        "To": SENDER,
        "ApiVersion": "2010-04-01",
        **extra,
    }


def signed_headers(
    path: str, params: Any, *, base: str = PUBLIC_URL, token: str = TOKEN
) -> dict[str, str]:
    return {
        "Content-Type": FORM,
        "X-Twilio-Signature": compute_signature(base + path, params, token),
    }


def post_signed(client: TestClient, path: str, params: dict[str, str]) -> httpx.Response:
    return client.post(path, content=urlencode(params), headers=signed_headers(path, params))


# --- reading the database ---------------------------------------------------------------


def row_counts(service: Service) -> dict[str, int]:
    """Rows in every table the service owns: a forged request must change none of them."""
    with service.engine.connect() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in models.metadata.sorted_tables
        }


def messages(service: Service) -> list[Any]:
    with service.engine.connect() as conn:
        return list(conn.execute(select(models.messages).order_by(models.messages.c.id)))


def only_reply(service: Service) -> Any:
    (reply,) = replies(service)
    return reply


def status_events(service: Service) -> list[Any]:
    with service.engine.connect() as conn:
        return list(conn.execute(select(models.status_events).order_by(models.status_events.c.id)))


def adjustments(service: Service) -> list[int]:
    ledger = models.ledger
    with service.engine.connect() as conn:
        query = select(ledger.c.amount_micros).where(ledger.c.kind == "reply_adjust")
        return [int(amount) for amount in conn.execute(query.order_by(ledger.c.id)).scalars()]


def wait_for(what: Callable[[], T], timeout: float = 10.0) -> T:
    """Poll until `what` gives something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting after {timeout}s")


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(ACCOUNT_SID, TOKEN) as running:
        yield running


def twilio_worker(fake: FakeTwilio, service: Service, timeout: float = 5.0) -> Worker:
    """The real worker and adapter, sending to the fake Twilio API."""
    sender = TwilioSender(ACCOUNT_SID, TOKEN, api_base_url=fake.base_url, timeout=timeout)
    return Worker(service, {"twilio": sender})


def reply_sent_through_twilio(client: TestClient, service: Service, fake: FakeTwilio) -> str:
    """A text comes in, its reply goes out; the reply's Twilio sid."""
    assert post_signed(client, SMS_PATH, inbound_params(message_sid(1))).status_code == 200
    worker = twilio_worker(fake, service)
    try:
        assert worker.drain() == 1
    finally:
        worker.close()
    (message,) = fake.messages
    reply = only_reply(service)
    assert (reply.status, reply.provider_message_id) == ("sent", message["sid"])
    assert counter(service, TODAY) == (ESTIMATE, 0)
    return str(message["sid"])


# --- inbound texts ----------------------------------------------------------------------


def test_signed_text_is_stored_answered_with_empty_twiml_and_a_reply_queued(
    app: FastAPI, client: TestClient, hook_service: Service
) -> None:
    woken = threading.Event()
    app.state.antirelou.on_reply.append(woken.set)
    params = inbound_params(message_sid(1))

    response = post_signed(client, SMS_PATH, params)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    (message,) = messages(hook_service)
    assert (message.provider, message.provider_id) == ("twilio", params["MessageSid"])
    assert (message.sender, message.line, message.body) == (SENDER, LINE, params["Body"])
    assert message.signature_checked is True
    assert json.loads(message.raw) == params
    assert message.decision == "reply"
    reply = only_reply(hook_service)
    assert (reply.message_id, reply.recipient, reply.status) == (message.id, SENDER, "queued")
    assert woken.is_set(), "a local worker should be woken for the new reply"


def test_a_nul_character_in_a_signed_text_is_kept_as_a_replacement_character(
    client: TestClient, hook_service: Service
) -> None:
    # PostgreSQL cannot store NUL: without care this is a 500, retried by Twilio forever.
    params = {**inbound_params(message_sid(1)), "Body": "salut\x00toi"}
    assert post_signed(client, SMS_PATH, params).status_code == 200
    (message,) = messages(hook_service)
    assert message.body == "salut\ufffdtoi"
    assert json.loads(message.raw)["Body"] == "salut\x00toi"  # the raw form, escaped


def test_same_message_sid_posted_twenty_times_is_one_message_and_one_reply(
    client: TestClient, hook_service: Service
) -> None:
    params = inbound_params(message_sid(7))
    statuses = [post_signed(client, SMS_PATH, params).status_code for _ in range(20)]
    assert statuses == [200] * 20
    assert count(hook_service, models.messages) == 1
    assert len(replies(hook_service)) == 1
    assert count(hook_service, models.ledger, models.ledger.c.kind == "inbound") == 1


def forged_headers(params: dict[str, str], forgery: str) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, params actually posted) for one way of getting the signature wrong."""
    if forgery == "missing":
        return {"Content-Type": FORM}, params
    if forgery == "wrong-token":
        return signed_headers(SMS_PATH, params, token="not-the-token"), params
    if forgery == "garbage":
        return {"Content-Type": FORM, "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}, params
    if forgery == "http-url":
        return signed_headers(SMS_PATH, params, base="http://decoy.example.org"), params
    if forgery == "other-host":
        return signed_headers(SMS_PATH, params, base="https://evil.example.org"), params
    if forgery == "tampered-body":
        return signed_headers(SMS_PATH, params), {**params, "Body": "autre chose"}
    raise AssertionError(forgery)


@pytest.mark.parametrize(
    "forgery", ["missing", "wrong-token", "garbage", "http-url", "other-host", "tampered-body"]
)
def test_forged_text_is_refused_before_anything_is_written(
    client: TestClient, hook_service: Service, forgery: str
) -> None:
    before = row_counts(hook_service)
    headers, posted = forged_headers(inbound_params(message_sid(1)), forgery)

    response = client.post(SMS_PATH, content=urlencode(posted), headers=headers)

    assert response.status_code == 403
    assert row_counts(hook_service) == before
    assert before["messages"] == 0


def test_forged_status_callback_is_refused_before_anything_is_written(
    client: TestClient, hook_service: Service
) -> None:
    before = row_counts(hook_service)
    params = status_params(message_sid(99), "delivered")
    headers = signed_headers(STATUS_PATH, params, token="not-the-token")
    response = client.post(STATUS_PATH, content=urlencode(params), headers=headers)
    assert response.status_code == 403
    assert row_counts(hook_service) == before


def test_wrong_content_type_is_415(client: TestClient, hook_service: Service) -> None:
    params = inbound_params(message_sid(1))
    headers = {**signed_headers(SMS_PATH, params), "Content-Type": "application/json"}
    response = client.post(SMS_PATH, content=json.dumps(params), headers=headers)
    assert response.status_code == 415
    assert count(hook_service, models.messages) == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"MessageSid=SM1&From=%2B33612345678&Body=caf%E9", id="percent-encoded"),
        pytest.param(b"MessageSid=SM1&From=%2B33612345678&Body=caf\xe9", id="raw-latin-1"),
    ],
)
def test_body_that_is_not_utf8_is_400(
    client: TestClient, hook_service: Service, body: bytes
) -> None:
    before = row_counts(hook_service)
    headers = {"Content-Type": FORM, "X-Twilio-Signature": "irrelevant"}
    response = client.post(SMS_PATH, content=body, headers=headers)
    assert response.status_code == 400
    assert row_counts(hook_service) == before


@pytest.mark.parametrize("missing", ["MessageSid", "From"])
def test_signed_text_without_a_required_parameter_is_400_and_says_which(
    client: TestClient, hook_service: Service, missing: str
) -> None:
    before = row_counts(hook_service)
    params = inbound_params(message_sid(1))
    del params[missing]

    response = post_signed(client, SMS_PATH, params)

    assert response.status_code == 400
    assert missing in response.json()["detail"]
    assert row_counts(hook_service) == before


def test_body_over_the_limit_is_413(client: TestClient, hook_service: Service) -> None:
    limit = hook_service.settings.web.max_body_bytes
    params = inbound_params(message_sid(1), body="a" * limit)
    response = post_signed(client, SMS_PATH, params)
    assert response.status_code == 413
    assert count(hook_service, models.messages) == 0


def test_streamed_body_over_the_limit_is_413_without_content_length(
    client: TestClient, hook_service: Service
) -> None:
    """No Content-Length to trust: the limit must hold while the body is being read."""
    limit = hook_service.settings.web.max_body_bytes
    params = inbound_params(message_sid(1), body="a" * limit)
    encoded = urlencode(params).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(encoded), 4096):
            yield encoded[start : start + 4096]

    headers = signed_headers(SMS_PATH, params)
    response = client.post(SMS_PATH, content=chunks(), headers=headers)
    assert response.status_code == 413
    assert count(hook_service, models.messages) == 0


def test_a_text_is_billed_the_parts_twilio_counted(
    client: TestClient, hook_service: Service
) -> None:
    """Twilio bills the parts it counted (NumSegments), which our count of the body may not
    match (a sender's phone may split differently); an unreadable count is no reason to
    lose the text: the body's own count stands in."""
    counted = inbound_params(message_sid(1), body="Salut") | {"NumSegments": "3"}
    unreadable = inbound_params(message_sid(2), "+33612345699", "Salut") | {"NumSegments": "x"}
    for params in (counted, unreadable):
        assert post_signed(client, SMS_PATH, params).status_code == 200
    price = round(hook_service.settings.pricing.inbound * 1_000_000)
    assert inbound_billed(hook_service) == [3 * price, price]


@pytest.mark.parametrize(
    "name",
    ["twilio_inbound_sms_french_utf8_SYNTHETIC.json", "twilio_inbound_mms_with_text.json"],
)
def test_fixture_text_resigned_for_our_url_is_stored_exactly(
    client: TestClient, hook_service: Service, name: str
) -> None:
    fixture = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    body: str = fixture["request"]["body"]
    pairs = parse_qsl(body, keep_blank_values=True, strict_parsing=True)

    response = client.post(SMS_PATH, content=body.encode(), headers=signed_headers(SMS_PATH, pairs))

    assert response.status_code == 200
    assert response.text == EMPTY_TWIML
    (message,) = messages(hook_service)
    expected = fixture["expected"]
    assert message.body == expected["body"]
    assert message.sender == expected["from"]
    assert message.num_media == expected.get("num_media", 0)
    assert json.loads(message.raw) == fixture["parsed_params"]
    assert message.signature_checked is True


# --- status callbacks -------------------------------------------------------------------


def test_delivered_status_marks_the_reply_delivered(
    client: TestClient, hook_service: Service, fake: FakeTwilio
) -> None:
    sid = reply_sent_through_twilio(client, hook_service, fake)
    response = post_signed(client, STATUS_PATH, status_params(sid, "delivered"))
    assert response.status_code == 204
    assert only_reply(hook_service).status == "delivered"
    (event,) = status_events(hook_service)
    assert (event.reply_id, event.state) == (only_reply(hook_service).id, "delivered")


def test_failed_21610_opts_the_sender_out_and_gives_the_money_back(
    client: TestClient, hook_service: Service, fake: FakeTwilio, clock: VirtualClock
) -> None:
    sid = reply_sent_through_twilio(client, hook_service, fake)
    params = status_params(sid, "failed", ErrorCode="21610")

    assert post_signed(client, STATUS_PATH, params).status_code == 204

    reply = only_reply(hook_service)
    assert (reply.status, reply.error_code, reply.cost_micros) == ("failed", "21610", 0)
    assert counter(hook_service, TODAY) == (0, 0)
    assert counter(hook_service, "total") == (0, 0)
    assert adjustments(hook_service) == [-ESTIMATE]
    with hook_service.engine.connect() as conn:
        assert outbox.is_opted_out(conn, LINE, SENDER)
    # Long after the reply window, he texts again: still no reply, because he opted out.
    clock.advance(timedelta(days=60))
    later = inbound_params(message_sid(2), body="alors ?")
    assert post_signed(client, SMS_PATH, later).status_code == 200
    assert len(replies(hook_service)) == 1
    assert json.loads(messages(hook_service)[-1].reasons) == ["sender_opted_out"]


def test_price_in_our_currency_settles_the_cost_and_adjusts_the_ledger(
    client: TestClient, hook_service: Service, fake: FakeTwilio
) -> None:
    sid = reply_sent_through_twilio(client, hook_service, fake)
    params = status_params(sid, "delivered", Price="-0.0800", PriceUnit="EUR")

    assert post_signed(client, STATUS_PATH, params).status_code == 204

    assert only_reply(hook_service).cost_micros == 80_000
    assert adjustments(hook_service) == [80_000 - ESTIMATE]
    assert counter(hook_service, TODAY) == (80_000, 0)
    assert counter(hook_service, "total") == (80_000, 0)


def test_price_in_another_currency_is_ignored(
    client: TestClient, hook_service: Service, fake: FakeTwilio
) -> None:
    sid = reply_sent_through_twilio(client, hook_service, fake)
    params = status_params(sid, "delivered", Price="-0.0079", PriceUnit="USD")

    assert post_signed(client, STATUS_PATH, params).status_code == 204

    reply = only_reply(hook_service)
    assert (reply.status, reply.cost_micros) == ("delivered", ESTIMATE)
    assert adjustments(hook_service) == []
    assert counter(hook_service, TODAY) == (ESTIMATE, 0)


def test_status_for_an_unknown_sid_is_accepted_and_kept(
    client: TestClient, hook_service: Service
) -> None:
    params = status_params(message_sid(404), "delivered")

    assert post_signed(client, STATUS_PATH, params).status_code == 202

    (event,) = status_events(hook_service)
    assert (event.provider, event.provider_message_id) == ("twilio", params["MessageSid"])
    assert (event.reply_id, event.state) == (None, "delivered")
    assert json.loads(event.raw) == params


def test_late_sent_does_not_move_a_delivered_reply_back(
    client: TestClient, hook_service: Service, fake: FakeTwilio
) -> None:
    sid = reply_sent_through_twilio(client, hook_service, fake)
    for status in ["delivered", "sent", "queued"]:
        assert post_signed(client, STATUS_PATH, status_params(sid, status)).status_code == 204
    assert only_reply(hook_service).status == "delivered"
    assert len(status_events(hook_service)) == 3


def test_status_that_beats_the_send_record_is_applied_once_the_send_is_recorded(
    client: TestClient, hook_service: Service
) -> None:
    """Twilio can call back before our worker has written down the sid it got."""
    with FakeTwilio(ACCOUNT_SID, TOKEN, hang_seconds=30, hang_creates=True) as fake:
        fake.script("hang")  # Twilio creates the message, then is slow to answer us
        assert post_signed(client, SMS_PATH, inbound_params(message_sid(1))).status_code == 200
        worker = twilio_worker(fake, hook_service, timeout=60)
        sending = threading.Thread(target=worker.drain, name="worker")
        sending.start()
        try:
            sid = str(wait_for(lambda: fake.messages)[0]["sid"])
            early = post_signed(client, STATUS_PATH, status_params(sid, "delivered"))
            assert early.status_code == 202  # no reply of ours has that sid yet
            assert only_reply(hook_service).status == "sending"
        finally:
            fake.stop()  # ends the stall: the worker gets its answer and records the send
            sending.join(timeout=30)
            worker.close()
    assert not sending.is_alive()
    reply = only_reply(hook_service)
    assert (reply.provider_message_id, reply.status) == (sid, "delivered")
    (event,) = status_events(hook_service)
    assert event.reply_id == reply.id


# --- health and the real HTTP stack -----------------------------------------------------


@pytest.mark.parametrize(("path", "text"), [("/healthz", "ok"), ("/readyz", "ready")])
def test_health_endpoints_answer(client: TestClient, path: str, text: str) -> None:
    response = client.get(path)
    assert (response.status_code, response.text) == (200, text)


@contextmanager
def real_server(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on a free 127.0.0.1 port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, http="h11", ws="none", lifespan="off", log_config=None, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive())
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert not thread.is_alive()


@pytest.mark.slow
def test_signed_webhook_over_a_real_http_server(app: FastAPI, hook_service: Service) -> None:
    params = inbound_params(message_sid(1))
    with real_server(app) as base_url, httpx.Client(base_url=base_url) as http:
        body = urlencode(params)
        forged = http.post(SMS_PATH, content=body, headers={"Content-Type": FORM})
        response = http.post(SMS_PATH, content=body, headers=signed_headers(SMS_PATH, params))
        health = http.get("/healthz")
    assert forged.status_code == 403
    assert response.status_code == 200
    assert response.text == EMPTY_TWIML
    assert health.status_code == 200
    (message,) = messages(hook_service)
    assert (message.provider_id, message.signature_checked) == (params["MessageSid"], True)
    assert only_reply(hook_service).status == "queued"
