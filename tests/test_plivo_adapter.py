"""The Plivo adapter against the shared fixtures, the SDKs' V3 vectors and a fake API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from antirelou.providers import plivo
from antirelou.providers.base import DeliveryState, OutgoingSms, SendError
from antirelou.providers.errors import MalformedRequest
from antirelou.providers.plivo import PlivoSender
from tests.fakes.canned import Received, answering
from tests.fakes.plivo_api import FakePlivo

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "providers"
COVERED = {
    "plivo_inbound_sms.json",
    "plivo_send_message_requests.json",
    "plivo_signature_v3_test_vectors.json",
}
UUID = "7a242edc-2f57-11e7-98c9-06ab0bf64327"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def test_every_plivo_fixture_is_covered() -> None:
    assert {path.name for path in FIXTURES.glob("plivo_*.json")} == COVERED


# --- signatures ---------------------------------------------------------------------------


def vectors() -> list[dict[str, Any]]:
    return list(load("plivo_signature_v3_test_vectors.json")["cases"])


@pytest.mark.parametrize("case", vectors(), ids=lambda c: f"{c['method']} {c['url'][-24:]}")
def test_signature_v3_vector(case: dict[str, Any]) -> None:
    data = load("plivo_signature_v3_test_vectors.json")
    params, nonce, token = data["params"], data["nonce"], data["auth_token"]
    method, url, expected = case["method"], case["url"], case["expected"]
    assert plivo.compute_signature(method, url, params, nonce, token) == expected
    assert plivo.validate_signature(method, url, params, expected, nonce, token)
    assert plivo.validate_signature(method, url, params, f"bogus=,{expected}", nonce, token)
    assert not plivo.validate_signature(method, url, params, expected, nonce + "1", token)
    assert not plivo.validate_signature(method, url, params, expected, nonce, "other")
    tampered = {**params, "CallStatus": "completed"}
    assert not plivo.validate_signature(method, url, tampered, expected, nonce, token)


def test_v2_is_not_accepted_as_v3() -> None:
    """V2 signs the URL and nonce only, not the parameters: it is never enough for us."""
    case = load("plivo_signature_v3_test_vectors.json")["v2_case"]
    message = (case["url"] + case["nonce"]).encode()
    digest = hmac.new(case["auth_token"].encode(), message, hashlib.sha256).digest()
    assert base64.b64encode(digest).decode() == case["expected"]
    assert not plivo.validate_signature(
        "POST", case["url"], {}, case["expected"], case["nonce"], case["auth_token"]
    )


def inbound_fixture() -> tuple[dict[str, Any], list[tuple[str, str]]]:
    fixture = load("plivo_inbound_sms.json")
    return fixture, parse_qsl(fixture["request"]["body"], keep_blank_values=True)


def test_inbound_fixture_signature() -> None:
    fixture, pairs = inbound_fixture()
    request = fixture["request"]
    headers, token = request["headers"], fixture["auth_token_for_signature"]
    signature, nonce = headers["X-Plivo-Signature-V3"], headers["X-Plivo-Signature-V3-Nonce"]
    assert dict(pairs) == fixture["parsed_params"]
    signed = plivo.signed_string("POST", request["url"], pairs) + "." + nonce
    assert signed == fixture["string_to_sign"]
    assert plivo.validate_signature("POST", request["url"], pairs, signature, nonce, token)
    several = f"{plivo.compute_signature('POST', request['url'], pairs, nonce, 'old')}, {signature}"
    assert plivo.validate_signature("POST", request["url"], pairs, several, nonce, token)
    assert not plivo.validate_signature(
        "POST", request["url"] + "x", pairs, signature, nonce, token
    )
    assert not plivo.validate_signature("POST", request["url"], pairs, "", nonce, token)
    assert not plivo.validate_signature("POST", request["url"], pairs, signature, "", token)


def test_repeated_parameters_are_signed_sorted() -> None:
    pairs = [("b", "2"), ("a", "z"), ("a", "y")]
    assert plivo.signed_string("POST", "https://x.example/h", pairs) == "https://x.example/h?ayazb2"
    assert plivo.signed_string("GET", "https://x.example/h?c=3", pairs) == (
        "https://x.example/h?a=y&a=z&b=2&c=3"
    )
    assert plivo.signed_string("POST", "https://x.example/h", []) == "https://x.example/h"


# --- webhooks -------------------------------------------------------------------------------


def test_inbound_fixture_parsed() -> None:
    fixture, pairs = inbound_fixture()
    sms = plivo.parse_inbound(dict(pairs))
    expected = fixture["expected"]
    assert sms.provider == "plivo"
    assert sms.provider_id == expected["message_uuid"]
    assert sms.sender == "+" + expected["from"]  # Plivo drops the '+'; lines are E.164
    assert sms.recipient == "+" + expected["to"]
    assert sms.body == expected["text"]
    assert sms.raw["Units"] == str(expected["units"])
    assert sms.parts == expected["units"]  # what Plivo bills receiving it
    assert sms.num_media == 0


@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        ({"MessageUUID": None}, "MessageUUID"),
        ({"MessageUUID": "not-a-uuid"}, "MessageUUID"),
        ({"From": ""}, "From"),
        ({"To": "A" * 33}, "To"),
        ({"To": None}, "To"),
        ({"Text": None}, "Text"),
        ({"MediaCount": "lots"}, "MediaCount"),
    ],
)
def test_malformed_inbound(change: dict[str, str | None], mentions: str) -> None:
    params = {**inbound_fixture()[0]["parsed_params"], **change}
    clean = {k: v for k, v in params.items() if v is not None}
    with pytest.raises(MalformedRequest) as caught:
        plivo.parse_inbound(clean)
    assert mentions in caught.value.reason


def test_mms_media_count() -> None:
    params = {**inbound_fixture()[0]["parsed_params"], "Type": "mms", "Text": "", "MediaCount": "2"}
    assert plivo.parse_inbound(params).num_media == 2


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("queued", DeliveryState.QUEUED),
        ("sent", DeliveryState.SENT),
        ("delivered", DeliveryState.DELIVERED),
        ("undelivered", DeliveryState.UNDELIVERED),
        ("failed", DeliveryState.FAILED),
        ("rejected", DeliveryState.FAILED),
    ],
)
def test_status_states(status: str, state: DeliveryState) -> None:
    update = plivo.parse_status({"MessageUUID": UUID, "Status": status, "ErrorCode": ""})
    assert (update.state, update.error_code, update.opted_out) == (state, None, False)


def test_status_error_200_is_an_opt_out() -> None:
    params = {"MessageUUID": UUID, "Status": "failed", "ErrorCode": "200", "To": "33612345678"}
    update = plivo.parse_status(params)
    assert (update.error_code, update.opted_out, update.recipient) == ("200", True, "+33612345678")


def test_status_of_a_part_lands_on_the_parent() -> None:
    parent = "11111111-2f57-11e7-98c9-06ab0bf64327"
    params = {"MessageUUID": UUID, "ParentMessageUUID": parent, "Status": "delivered"}
    assert plivo.parse_status(params).provider_message_id == parent


def test_status_price_is_in_dollars() -> None:
    params = {"MessageUUID": UUID, "Status": "sent", "TotalAmount": "0.00650"}
    update = plivo.parse_status(params)
    assert update.price == pytest.approx(0.0065)
    assert update.currency == "USD"


@pytest.mark.parametrize(
    "params",
    [
        {"MessageUUID": UUID, "Status": "exploded"},
        {"MessageUUID": UUID},
        {"Status": "sent"},
        {"MessageUUID": "nope", "Status": "sent"},
    ],
)
def test_malformed_status(params: dict[str, str]) -> None:
    with pytest.raises(MalformedRequest):
        plivo.parse_status(params)


# --- sending: the fixture over real HTTP (a canned server) ------------------------------------


def mock_sender(
    status: int, body: str, seen: list[Received] | None = None
) -> AbstractContextManager[PlivoSender]:
    """A sender whose API answers every request with `status` and `body`, over real HTTP."""
    return answering(
        status, body, lambda url: PlivoSender("AuthID", "AuthToken", api_base_url=url), seen
    )


def fixture_sms() -> OutgoingSms:
    body = json.loads(load("plivo_send_message_requests.json")["request"]["body"])
    return OutgoingSms(1, body["src"], "+" + body["dst"], body["text"], body["url"])


def test_fixture_send_request_shape() -> None:
    fixture = load("plivo_send_message_requests.json")
    seen: list[Received] = []
    with mock_sender(202, fixture["responses"][0]["body"], seen) as sender:
        sender.send(fixture_sms())
    (request,) = seen
    expected = fixture["request"]
    assert (request.method, request.path) == (expected["method"], urlsplit(expected["url"]).path)
    assert f"url={expected['url']!r}" in repr(PlivoSender("AuthID", "AuthToken"))
    for header in ("Content-Type", "Accept", "Authorization"):
        assert request.headers[header] == expected["headers"][header]
    assert json.loads(request.body) == json.loads(expected["body"])


def fixture_answers() -> list[dict[str, Any]]:
    return list(load("plivo_send_message_requests.json")["responses"])


@pytest.mark.parametrize("case", fixture_answers(), ids=lambda case: case["case"])
def test_fixture_send_answers(case: dict[str, Any]) -> None:
    expected = case["expected"]
    with mock_sender(case["status"], case["body"]) as sender:
        if "external_id" in expected:
            assert sender.send(fixture_sms()).provider_message_id == expected["external_id"]
            return
        with pytest.raises(SendError) as caught:
            sender.send(fixture_sms())
    error = caught.value
    assert "AuthToken" not in str(error)
    if expected.get("retry"):
        assert (error.transient, error.maybe_sent) == (True, False)
    elif expected["error"] == "response content":  # a 2xx we cannot read: maybe sent
        assert (error.transient, error.maybe_sent) == (True, True)
    else:
        assert error.transient is False
        assert error.code == "401"


@pytest.mark.parametrize(("status", "transient"), [(400, False), (404, False), (503, True)])
def test_other_answers(status: int, transient: bool) -> None:
    with mock_sender(status, '{"error": "no"}') as sender, pytest.raises(SendError) as caught:
        sender.send(fixture_sms())
    assert caught.value.transient is transient
    assert caught.value.maybe_sent is transient


# --- reconciliation against the fake API ----------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakePlivo]:
    with FakePlivo(hang_seconds=1.0) as running:
        yield running


@pytest.fixture
def sender(fake: FakePlivo) -> Iterator[PlivoSender]:
    real = PlivoSender(fake.auth_id, fake.auth_token, api_base_url=fake.base_url, timeout=5)
    yield real
    real.close()


SMS = OutgoingSms(3, "+33939000021", "+33612345678", "Bonjour", "https://d.example/s")


def test_send_ok(fake: FakePlivo, sender: PlivoSender) -> None:
    result = sender.send(SMS)
    (message,) = fake.messages
    assert result.provider_message_id == message["message_uuid"]
    assert fake.requests == [
        {
            "src": "33939000021",
            "dst": "33612345678",
            "text": "Bonjour",
            "url": "https://d.example/s",
            "method": "POST",
        }
    ]
    assert fake.calls[0].authorized


def test_find_sent_after_500_after_create(fake: FakePlivo, sender: PlivoSender) -> None:
    since = datetime.now(UTC)
    fake.script("500_after_create")
    with pytest.raises(SendError):
        sender.send(SMS)
    found = sender.find_sent(SMS, since)
    assert found is not None
    assert found.provider_message_id == fake.messages[0]["message_uuid"]
    query = fake.calls[-1].query
    assert query["message_direction"] == "outbound"
    assert query["limit"] == "20"
    assert query["offset"] == "0"


def test_find_sent_nothing_after_plain_500(fake: FakePlivo, sender: PlivoSender) -> None:
    fake.script("500")
    with pytest.raises(SendError):
        sender.send(SMS)
    assert sender.find_sent(SMS, datetime.now(UTC)) is None


def test_find_sent_ignores_other_recipients_and_earlier_times(
    fake: FakePlivo, sender: PlivoSender
) -> None:
    sender.send(OutgoingSms(1, SMS.sender, "+33600000000", "Bonjour"))
    assert sender.find_sent(SMS, datetime.now(UTC) - timedelta(minutes=1)) is None
    sender.send(SMS)
    assert sender.find_sent(SMS, datetime.now(UTC) + timedelta(minutes=1)) is None
    assert sender.find_sent(SMS, datetime.now(UTC) - timedelta(minutes=1)) is not None


def test_find_sent_reads_further_pages(fake: FakePlivo, sender: PlivoSender) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    sender.send(SMS)
    for n in range(30):
        sender.send(OutgoingSms(100 + n, SMS.sender, f"+336000000{n:02d}", "x"))
    assert sender.find_sent(SMS, since) is not None
    offsets = [call.query.get("offset") for call in fake.calls if call.method == "GET"]
    assert offsets == ["0", "20"]


def test_find_sent_gives_up_rather_than_guess(fake: FakePlivo, sender: PlivoSender) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    for n in range(101):
        sender.send(OutgoingSms(100 + n, SMS.sender, f"+33600000{n:03d}", "x"))
    with pytest.raises(SendError) as caught:
        sender.find_sent(SMS, since)
    assert (caught.value.transient, caught.value.maybe_sent) == (True, True)


@pytest.mark.parametrize("behaviour", ["500", "hang"])
def test_failed_lookup_raises(fake: FakePlivo, behaviour: str) -> None:
    real = PlivoSender(fake.auth_id, fake.auth_token, api_base_url=fake.base_url, timeout=0.3)
    fake.script_list(behaviour)
    try:
        with pytest.raises(SendError) as caught:
            real.find_sent(SMS, datetime.now(UTC))
    finally:
        real.close()
    assert caught.value.maybe_sent


def test_repr_hides_the_token() -> None:
    sender = PlivoSender("MA123", "super-secret")
    try:
        assert "super-secret" not in repr(sender)
    finally:
        sender.close()
