"""The conformance suite: every provider adapter, Twilio included, held to the same rules.

For each provider, through the real app (`create_app` + TestClient) and against its fake API
over real HTTP:
- a signed text is stored once and answered once, however often it is delivered;
- a malformed request is a 4xx that says why, and writes nothing;
- a forged or unsigned request is a 403, and writes nothing in any table;
- send failures are classified: transient (retry), ambiguous (look it up first), permanent;
- a line answers a text end to end: webhook in, worker out, the fake gets the right request,
  and the provider's delivery callback lands on the reply.
Each provider's own fixtures and signature vectors are checked in its adapter tests.
"""

from __future__ import annotations

import socket
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, inspect, select, table

from antirelou import models
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.outbox import ReplyStatus
from antirelou.providers.base import OutgoingSms, Sender, SendError
from antirelou.providers.registry import build_senders
from antirelou.service import Service
from antirelou.web.app import create_app
from antirelou.worker import Worker
from tests.helpers import LINE, count, make_settings, replies
from tests.kits import KITS, PUBLIC_URL, Kit, WebRequest

with warnings.catch_warnings():  # see test_webhooks: starlette's TestClient on plain httpx
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

SENDER = "+33612345678"
SMS = OutgoingSms(7, LINE, SENDER, "Bonjour, ce numéro n'est pas le sien.", None)


@pytest.fixture(params=KITS, ids=lambda kit: kit.name)
def kit(request: pytest.FixtureRequest) -> Kit:
    chosen: Kit = request.param
    return chosen


@pytest.fixture
def fake(kit: Kit) -> Iterator[Any]:
    with kit.fake() as running:
        yield running


@pytest.fixture
def line_service(database_url: str, clock: VirtualClock, kit: Kit, fake: Any) -> Iterator[Service]:
    settings = make_settings(
        database_url,
        public_url=PUBLIC_URL,
        lines=[{"number": LINE, "provider": kit.name}],
        worker={"backoff": "1s", "lease": "30s", "max_attempts": 5},
        **kit.settings(fake),
    )
    service = Service(settings, make_engine(database_url), clock)
    service.sync_lines()
    yield service
    service.dispose()


@pytest.fixture
def client(line_service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(line_service)) as test_client:
        yield test_client


@pytest.fixture
def sender(line_service: Service, kit: Kit) -> Iterator[Sender]:
    built = build_senders(line_service.settings)[kit.name]
    yield built
    built.close()


def call(client: TestClient, request: WebRequest) -> httpx.Response:
    response: httpx.Response = client.request(
        request.method,
        request.path,
        params=request.params,
        content=request.content,
        headers=request.headers,
    )
    return response


def snapshot(service: Service) -> dict[str, int]:
    """Rows in every table of the database, whoever created it."""
    names = [n for n in inspect(service.engine).get_table_names() if n != "alembic_version"]
    with service.engine.connect() as conn:
        return {
            name: int(conn.execute(select(func.count()).select_from(table(name))).scalar_one())
            for name in names
        }


# --- webhooks -----------------------------------------------------------------------------


def test_a_signed_text_is_stored_and_answered_once(
    kit: Kit, client: TestClient, line_service: Service
) -> None:
    request = kit.inbound(line_service, kit.message_id(1), SENDER)
    first = call(client, request)
    assert str(first.status_code) in kit.expected_codes, first.text
    again = call(client, request)  # the provider re-delivers the very same text
    assert str(again.status_code) in kit.expected_codes, again.text
    assert count(line_service, models.messages) == 1
    (message,) = _messages(line_service)
    assert (message.provider, message.sender, message.line) == (kit.name, SENDER, LINE)
    assert message.signature_checked
    assert len(replies(line_service)) == 1


def test_two_texts_are_two_messages_and_one_reply(
    kit: Kit, client: TestClient, line_service: Service
) -> None:
    for n in (1, 2):
        response = call(client, kit.inbound(line_service, kit.message_id(n), SENDER, f"t{n}"))
        assert str(response.status_code) in kit.expected_codes, response.text
    assert count(line_service, models.messages) == 2
    assert len(replies(line_service)) == 1


def test_malformed_is_a_4xx_with_a_reason_and_writes_nothing(
    kit: Kit, client: TestClient, line_service: Service
) -> None:
    before = snapshot(line_service)
    response = call(client, kit.without_sender(line_service, kit.message_id(3)))
    assert response.status_code == 400, response.text
    reason = response.json()["detail"]
    assert any(name in reason for name in ("From", "msisdn", "sender")), reason
    assert snapshot(line_service) == before


@pytest.mark.parametrize("tamper", ["forged", "unsigned"])
def test_forged_or_unsigned_is_403_and_writes_nothing(
    kit: Kit, client: TestClient, line_service: Service, tamper: str
) -> None:
    before = snapshot(line_service)
    good = kit.inbound(line_service, kit.message_id(4), SENDER)
    bad = kit.forged(good) if tamper == "forged" else kit.unsigned(good)
    response = call(client, bad)
    assert response.status_code == 403, response.text
    assert response.json()["detail"]
    status = kit.delivered(line_service, "antirelou-1", SENDER)
    forged_status = kit.forged(status) if tamper == "forged" else kit.unsigned(status)
    assert call(client, forged_status).status_code == 403
    assert snapshot(line_service) == before


def test_secrets_never_appear_in_refusals(
    kit: Kit, client: TestClient, line_service: Service, fake: Any
) -> None:
    response = call(client, kit.forged(kit.inbound(line_service, kit.message_id(5), SENDER)))
    for secret in _secrets(kit, line_service):
        assert secret not in response.text


# --- sending over HTTP against the fake ---------------------------------------------------


def _send_error(sender: Sender, sms: OutgoingSms = SMS) -> SendError:
    with pytest.raises(SendError) as caught:
        sender.send(sms)
    return caught.value


def test_transient_refusal_is_retryable_and_was_not_sent(
    kit: Kit, fake: Any, sender: Sender
) -> None:
    fake.script(kit.transient)
    error = _send_error(sender)
    assert (error.transient, error.maybe_sent) == (True, False)
    assert kit.created(fake) == 0
    assert sender.send(SMS).provider_message_id  # the script is used up: "ok" again
    assert kit.created(fake) == 1


def test_ambiguous_failure_is_looked_up_not_resent(kit: Kit, fake: Any, sender: Sender) -> None:
    since = datetime.now(UTC)
    fake.script(kit.ambiguous)
    error = _send_error(sender)
    assert (error.transient, error.maybe_sent) == (True, True)
    found = sender.find_sent(SMS, since)
    assert found is not None
    assert kit.created(fake) == 1


def test_permanent_refusal_is_not_retried(kit: Kit, fake: Any, sender: Sender) -> None:
    fake.script(kit.permanent)
    error = _send_error(sender)
    assert error.transient is False
    assert kit.created(fake) == 0


def test_unreachable_provider_was_not_sent(
    kit: Kit, line_service: Service, fake: Any, database_url: str
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    overrides = kit.settings(fake)
    section = overrides[kit.name]
    key = "api_url" if "api_url" in section else "api_base_url"
    overrides[kit.name] = {**section, key: closed}
    settings = make_settings(
        database_url, lines=[{"number": LINE, "provider": kit.name}], **overrides
    )
    unreachable = build_senders(settings)[kit.name]
    try:
        error = _send_error(unreachable)
    finally:
        unreachable.close()
    assert (error.transient, error.maybe_sent) == (True, False)
    for secret in _secrets(kit, line_service):
        assert secret not in str(error)


# --- end to end ---------------------------------------------------------------------------


def test_a_line_answers_a_text_end_to_end(
    kit: Kit, client: TestClient, line_service: Service, fake: Any
) -> None:
    response = call(client, kit.inbound(line_service, kit.message_id(6), SENDER))
    assert str(response.status_code) in kit.expected_codes, response.text
    worker = Worker(line_service, build_senders(line_service.settings))
    try:
        assert worker.drain() == 1
    finally:
        worker.close()
    reply_text = line_service.settings.lines[0].reply
    expected_from = kit.wire(LINE) if kit.sends_from_line else None
    assert kit.sent(fake) == [
        {
            "to": kit.wire(SENDER),
            "from": expected_from,
            "text": reply_text,
            "callback": kit.callback(),
        }
    ]
    (reply,) = replies(line_service)
    assert reply.status == ReplyStatus.SENT
    assert reply.provider_message_id
    delivered = call(client, kit.delivered(line_service, reply.provider_message_id, SENDER))
    assert delivered.status_code in (200, 204), delivered.text
    assert replies(line_service)[0].status == ReplyStatus.DELIVERED


def _messages(service: Service) -> list[Any]:
    with service.engine.connect() as conn:
        return list(conn.execute(select(models.messages)))


def _secrets(kit: Kit, service: Service) -> list[str]:
    section = getattr(service.settings, kit.name)
    values = [
        getattr(section, name).get_secret_value()
        for name in ("auth_token", "api_secret", "signature_secret", "password", "signing_key")
        if hasattr(section, name)
    ]
    return [value for value in values if value]
