"""Provider-specific webhook behaviour beyond the conformance suite: Vonage's three request
shapes, its long texts and receipts; Plivo's several signatures; the Android app's events."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, inspect, select, table

from antirelou import models, outbox
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.providers import plivo, vonage
from antirelou.providers.android import compute_signature
from antirelou.service import Service
from antirelou.web.app import create_app
from tests.helpers import LINE, count, inbound_billed, make_settings, replies
from tests.kits import FORM, PUBLIC_URL, AndroidKit, PlivoKit, VonageKit, WebRequest

with warnings.catch_warnings():  # see test_webhooks: starlette's TestClient on plain httpx
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

SENDER = "+33612345678"
VONAGE, PLIVO, ANDROID = VonageKit(), PlivoKit(), AndroidKit()
UNUSED_API = "https://127.0.0.1:9"  # never called: these tests send nothing


def service_for(database_url: str, clock: VirtualClock, provider: str, **extra: Any) -> Service:
    sections = {
        "vonage": {
            "api_key": "k",
            "api_secret": "s",
            "signature_secret": "vonage-signature-secret",
            "signature_method": "sha256",
            "api_base_url": UNUSED_API,
        },
        "plivo": {"auth_id": "MA", "auth_token": "plivo-token", "api_base_url": UNUSED_API},
        "android": {
            "api_url": UNUSED_API,
            "username": "sms",
            "password": "p",
            "signing_key": "android-signing-key",
        },
    }
    settings = make_settings(
        database_url,
        public_url=PUBLIC_URL,
        lines=[{"number": LINE, "provider": provider}],
        **{provider: {**sections[provider], **extra}},
    )
    service = Service(settings, make_engine(database_url), clock)
    service.sync_lines()
    return service


@pytest.fixture
def vonage_service(database_url: str, clock: VirtualClock) -> Iterator[Service]:
    service = service_for(database_url, clock, "vonage")
    yield service
    service.dispose()


@pytest.fixture
def vonage_client(vonage_service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(vonage_service)) as client:
        yield client


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
    names = [n for n in inspect(service.engine).get_table_names() if n != "alembic_version"]
    with service.engine.connect() as conn:
        return {
            n: int(conn.execute(select(func.count()).select_from(table(n))).scalar_one())
            for n in names
        }


def bodies(service: Service) -> list[str]:
    with service.engine.connect() as conn:
        return sorted(conn.execute(select(models.messages.c.body)).scalars())


# --- Vonage -------------------------------------------------------------------------------


def test_vonage_post_form(vonage_client: TestClient, vonage_service: Service) -> None:
    params = VONAGE.sign(vonage_service, VONAGE.inbound_params("0B01", SENDER, "Coucou"))
    response = vonage_client.post(
        VONAGE.inbound_path, content=urlencode(params), headers={"Content-Type": FORM}
    )
    assert response.status_code == 204, response.text
    assert bodies(vonage_service) == ["Coucou"]


def test_vonage_post_json(vonage_client: TestClient, vonage_service: Service) -> None:
    params: dict[str, Any] = VONAGE.sign(
        vonage_service, VONAGE.inbound_params("0B02", SENDER, "Coucou ’")
    )
    params["timestamp"] = int(params["timestamp"])  # JSON may carry it as a number
    response = vonage_client.post(VONAGE.inbound_path, json=params)
    assert response.status_code == 204, response.text
    assert bodies(vonage_service) == ["Coucou ’"]


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"msisdn": {"nested": 1}}', "application/json", 400),
        (b'{"text": "a", "text": "b"}', "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b"\xff\xfe", "application/json", 400),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400),
        (b"a=1&a=2", FORM, 400),
        (b"<xml/>", "text/xml", 415),
    ],
)
def test_vonage_undecodable_bodies_are_4xx(
    vonage_client: TestClient,
    vonage_service: Service,
    content: bytes,
    content_type: str,
    status: int,
) -> None:
    before = snapshot(vonage_service)
    response = vonage_client.post(
        VONAGE.inbound_path, content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == status, response.text
    assert response.json()["detail"]
    assert snapshot(vonage_service) == before


def test_vonage_stale_timestamp_is_refused(
    vonage_client: TestClient, vonage_service: Service, clock: VirtualClock
) -> None:
    request = VONAGE.inbound(vonage_service, "0B03", SENDER)
    before = snapshot(vonage_service)
    clock.advance(timedelta(hours=24, seconds=1))
    response = call(vonage_client, request)
    assert response.status_code == 403
    assert "timestamp" in response.json()["detail"]
    assert snapshot(vonage_service) == before


def test_vonage_without_a_secret_refuses_everything(vonage_service: Service) -> None:
    """The configuration check refuses a Vonage line without it; the webhook does too."""
    settings = vonage_service.settings
    no_secret = settings.model_copy(
        update={"vonage": settings.vonage.model_copy(update={"signature_secret": SecretStr("")})}
    )
    unsafe = Service(no_secret, vonage_service.engine, vonage_service.clock)
    params = VONAGE.inbound_params("0B04", SENDER, "x")
    params["sig"] = vonage.compute_signature(params, "", "sha256")
    with TestClient(create_app(unsafe)) as client:
        response = client.get(VONAGE.inbound_path, params=params)
    assert response.status_code == 403
    assert count(vonage_service, models.messages) == 0


def concat_request(service: Service, part_id: str, number: int, text: str) -> WebRequest:
    params = {
        **VONAGE.inbound_params(part_id, SENDER, text),
        "concat": "true",
        "concat-ref": "42",
        "concat-total": "3",
        "concat-part": str(number),
    }
    return WebRequest("GET", VONAGE.inbound_path, params=VONAGE.sign(service, params))


def test_vonage_long_text_is_one_message_and_one_reply(
    vonage_client: TestClient, vonage_service: Service
) -> None:
    words = ["Salut, ", "ça va ", "ma belle ?"]
    requests = [concat_request(vonage_service, f"0B1{n}", n, w) for n, w in enumerate(words, 1)]
    for request in [requests[2], requests[0], requests[0], requests[1], requests[2]]:
        response = call(vonage_client, request)
        assert response.status_code == 204, response.text
    assert bodies(vonage_service) == ["".join(words)]
    assert count(vonage_service, models.inbound_parts) == 3
    assert len(replies(vonage_service)) == 1
    # Each part came as a webhook and is billed, though the joined text would fit in one.
    price = round(vonage_service.settings.pricing.inbound * 1_000_000)
    assert inbound_billed(vonage_service) == [3 * price]


def test_vonage_malformed_part_writes_nothing(
    vonage_client: TestClient, vonage_service: Service
) -> None:
    before = snapshot(vonage_service)
    params = {**VONAGE.inbound_params("0B20", SENDER, "x"), "concat": "true", "concat-ref": "1"}
    response = vonage_client.get(VONAGE.inbound_path, params=VONAGE.sign(vonage_service, params))
    assert response.status_code == 400
    assert "concat-total" in response.json()["detail"]
    assert snapshot(vonage_service) == before


def test_vonage_unknown_receipt_status_is_acknowledged_not_stored(
    vonage_client: TestClient, vonage_service: Service
) -> None:
    before = snapshot(vonage_service)
    params = {"messageId": "external1", "status": "unknown", "to": "2020", "msisdn": "33612345678"}
    response = vonage_client.get(VONAGE.status_path, params=VONAGE.sign(vonage_service, params))
    assert response.status_code == 204
    assert snapshot(vonage_service) == before


def test_vonage_opt_out_receipt_marks_the_number(
    vonage_client: TestClient, vonage_service: Service
) -> None:
    assert call(vonage_client, VONAGE.inbound(vonage_service, "0B30", SENDER)).status_code == 204
    (reply,) = replies(vonage_service)
    with vonage_service.engine.begin() as conn:
        conn.execute(
            models.replies.update().values(status="sent", provider_message_id="antirelou-x")
        )
    params = {
        "msisdn": SENDER.removeprefix("+"),
        "to": LINE.removeprefix("+"),
        "messageId": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
        "price": "0.00000000",
        "status": "rejected",
        "err-code": "9",
        "client-ref": "antirelou-x",
    }
    response = vonage_client.get(VONAGE.status_path, params=VONAGE.sign(vonage_service, params))
    assert response.status_code == 204
    assert replies(vonage_service)[0].status == "failed"
    assert replies(vonage_service)[0].error_code == "9"
    with vonage_service.engine.connect() as conn:
        assert outbox.is_opted_out(conn, LINE, SENDER)
    assert reply.id == replies(vonage_service)[0].id


# --- Plivo --------------------------------------------------------------------------------


def test_plivo_accepts_any_of_several_signatures(database_url: str, clock: VirtualClock) -> None:
    service = service_for(database_url, clock, "plivo")
    request = PLIVO.inbound(service, PLIVO.message_id(1), SENDER)
    old = plivo.compute_signature("POST", PUBLIC_URL + PLIVO.inbound_path, {}, "1", "old-token")
    rotated = {**request.headers}
    rotated["X-Plivo-Signature-V3"] = f"{old},{request.headers['X-Plivo-Signature-V3']}"
    with TestClient(create_app(service)) as client:
        response = client.post(request.path, content=request.content, headers=rotated)
    assert response.status_code == 200, response.text
    assert count(service, models.messages) == 1
    service.dispose()


def test_plivo_signature_covers_the_public_url(database_url: str, clock: VirtualClock) -> None:
    """Signed for another URL (another deployment, another path): refused."""
    service = service_for(database_url, clock, "plivo")
    params = {
        "From": "33612345678",
        "To": "33939000021",
        "Text": "x",
        "MessageUUID": PLIVO.message_id(2),
    }
    nonce = "123"
    elsewhere = plivo.compute_signature(
        "POST", "https://other.example/webhooks/plivo/sms", params, nonce, "plivo-token"
    )
    headers = {
        "Content-Type": FORM,
        "X-Plivo-Signature-V3": elsewhere,
        "X-Plivo-Signature-V3-Nonce": nonce,
    }
    with TestClient(create_app(service)) as client:
        response = client.post(PLIVO.inbound_path, content=urlencode(params), headers=headers)
    assert response.status_code == 403
    assert count(service, models.messages) == 0
    service.dispose()


def test_plivo_text_is_billed_the_units_plivo_counted(
    database_url: str, clock: VirtualClock
) -> None:
    service = service_for(database_url, clock, "plivo")
    request = PLIVO.inbound(service, PLIVO.message_id(7), SENDER, "Salut")
    params = dict(parse_qsl(request.content.decode()))  # resigned with Units=2
    request = PLIVO._post(service, PLIVO.inbound_path, params | {"Units": "2"})
    with TestClient(create_app(service)) as client:
        assert call(client, request).status_code == 200
    price = round(service.settings.pricing.inbound * 1_000_000)
    assert inbound_billed(service) == [2 * price]
    service.dispose()


# --- Android --------------------------------------------------------------------------------


@pytest.fixture
def android_service(database_url: str, clock: VirtualClock) -> Iterator[Service]:
    service = service_for(database_url, clock, "android")
    yield service
    service.dispose()


def test_android_stale_timestamp_is_refused(android_service: Service, clock: VirtualClock) -> None:
    request = ANDROID.inbound(android_service, ANDROID.message_id(1), SENDER)
    before = snapshot(android_service)
    clock.advance(timedelta(minutes=5, seconds=1))
    with TestClient(create_app(android_service)) as client:
        response = call(client, request)
    assert response.status_code == 403
    assert "X-Timestamp" in response.json()["detail"]
    assert snapshot(android_service) == before


def test_android_older_app_without_recipient_lands_on_the_line(android_service: Service) -> None:
    event = {
        "event": "sms:received",
        "id": "Ey6ECgOkVVFjz3CL48B8C",
        "payload": {"messageId": "abc", "message": "Salut", "phoneNumber": "0612345678"},
    }
    request = ANDROID._post(android_service, ANDROID.inbound_path, event)
    with TestClient(create_app(android_service)) as client:
        assert call(client, request).status_code == 204
    with android_service.engine.connect() as conn:
        row = conn.execute(select(models.messages.c.sender, models.messages.c.line)).one()
    assert (row.sender, row.line) == (SENDER, LINE)
    assert len(replies(android_service)) == 1


def test_android_other_events_are_acknowledged_not_stored(android_service: Service) -> None:
    before = snapshot(android_service)
    event = {"event": "system:ping", "id": "p1", "payload": {"health": {"status": "pass"}}}
    request = ANDROID._post(android_service, ANDROID.status_path, event)
    with TestClient(create_app(android_service)) as client:
        assert call(client, request).status_code == 204
    assert snapshot(android_service) == before


def test_android_signed_garbage_is_a_400(android_service: Service) -> None:
    """A valid signature over a body that is not an event: 400, and nothing written."""
    before = snapshot(android_service)
    no_payload = ANDROID._post(android_service, ANDROID.inbound_path, {"event": "sms:received"})
    timestamp = no_payload.headers["X-Timestamp"]
    signature = compute_signature(b"{not json", timestamp, "android-signing-key")
    not_json = replace(
        no_payload,
        content=b"{not json",
        headers={**no_payload.headers, "X-Signature": signature},
    )
    with TestClient(create_app(android_service)) as client:
        missing = call(client, no_payload)
        garbage = call(client, not_json)
    assert missing.status_code == 400
    assert "payload" in missing.json()["detail"]
    assert garbage.status_code == 400
    assert garbage.json()["detail"].startswith("malformed JSON body")
    assert snapshot(android_service) == before


@pytest.mark.parametrize(("inbound_price", "billed"), [(None, 0), (0.002, 2000)])
def test_android_texts_are_billed_at_the_sim_plans_price(
    database_url: str, clock: VirtualClock, inbound_price: float | None, billed: int
) -> None:
    """Receiving is free on almost every SIM plan: the texts the phone forwards are booked
    at `[android] inbound_price` (0 unless set), not at the SMS provider's [pricing]."""
    extra = {} if inbound_price is None else {"inbound_price": inbound_price}
    service = service_for(database_url, clock, "android", **extra)
    assert service.settings.pricing.inbound > 0
    request = ANDROID.inbound(service, ANDROID.message_id(1), SENDER)
    with TestClient(create_app(service)) as client:
        assert call(client, request).status_code == 204
    assert inbound_billed(service) == [billed]
    service.dispose()
