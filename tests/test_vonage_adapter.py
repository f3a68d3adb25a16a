"""The Vonage adapter against the shared fixtures, its signature vectors and a fake API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from antirelou.providers import vonage
from antirelou.providers.base import DeliveryState, InboundSms, OutgoingSms, SendError
from antirelou.providers.errors import MalformedRequest
from antirelou.providers.multipart import Part
from antirelou.providers.vonage import VonageSender
from tests.fakes.canned import Received, answering
from tests.fakes.vonage_api import PRICE_PER_PART, FakeVonage

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "providers"
# The fixture's method labels, as the dashboard calls them, to our setting's values.
METHODS = {
    "md5hash (dashboard default 'MD5 hash')": "md5hash",
    "md5 HMAC": "md5",
    "sha1 HMAC": "sha1",
    "sha256 HMAC": "sha256",
    "sha512 HMAC": "sha512",
    "sha256 HMAC (v4 SDK)": "sha256",
    "md5 HMAC (v4 SDK default)": "md5",
}
COVERED = {
    "vonage_dlr_delivered_get.json",
    "vonage_dlr_failed_errcode.json",
    "vonage_inbound_sms_post_form.json",
    "vonage_inbound_sms_signed_SYNTHETIC.json",
    "vonage_send_message_requests.json",
    "vonage_signature_test_vectors.json",
}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def test_every_vonage_fixture_is_covered() -> None:
    assert {path.name for path in FIXTURES.glob("vonage_*.json")} == COVERED


# --- signatures ---------------------------------------------------------------------------


def vectors() -> list[dict[str, Any]]:
    return list(load("vonage_signature_test_vectors.json")["cases"])


@pytest.mark.parametrize("case", vectors(), ids=lambda case: case["method"])
def test_signature_vector(case: dict[str, Any]) -> None:
    method = METHODS[case["method"]]
    params = {key: str(value) for key, value in case["params"].items()}
    assert vonage.compute_signature(case["params"], case["secret"], method) == case["expected"]
    if "string" in case:
        assert vonage.signed_string(params) == case["string"]
    signed = {**params, "sig": case["expected"]}
    assert vonage.signature_valid(signed, case["secret"], method)
    assert vonage.signature_valid(
        {**signed, "sig": case["expected"].upper()}, case["secret"], method
    )
    assert not vonage.signature_valid(signed, "wrong-secret", method)
    assert not vonage.signature_valid({**signed, "extra": "1"}, case["secret"], method)
    other = next(m for m in vonage.SIGNATURE_METHODS if m != method)
    assert not vonage.signature_valid(signed, case["secret"], other)


def test_signed_fixture() -> None:
    fixture = load("vonage_inbound_sms_signed_SYNTHETIC.json")
    params = query_of(fixture["request"]["url"])
    secret, method = fixture["signature_secret"], fixture["algorithm"]
    assert vonage.signature_valid(params, secret, method) is fixture["expected"]["signature_valid"]
    signed_at = datetime.fromtimestamp(int(params["timestamp"]), tz=UTC)
    day = timedelta(days=1)
    assert vonage.refusal(params, secret, method, signed_at + timedelta(minutes=3), day) is None
    stale = vonage.refusal(params, secret, method, signed_at + day + timedelta(seconds=1), day)
    assert stale == "stale or missing Vonage timestamp"
    future = vonage.refusal(params, secret, method, signed_at - timedelta(hours=25), day)
    assert future == "stale or missing Vonage timestamp"
    tampered = {**params, "text": "Msg!"}
    assert vonage.refusal(tampered, secret, method, signed_at, day) == (
        "missing or invalid Vonage signature (sig)"
    )


@pytest.mark.parametrize("timestamp", ["", "abc", "1.5", "-1", "٣", "1493675569000"])
def test_unreadable_timestamps_are_refused(timestamp: str) -> None:
    params = {"a": "1", "timestamp": timestamp}
    params["sig"] = vonage.compute_signature(params, "s", "sha256")
    now = datetime(2017, 5, 1, tzinfo=UTC)
    assert vonage.refusal(params, "s", "sha256", now, timedelta(days=3650)) is not None


def test_values_with_separators_are_signed_as_vonage_does() -> None:
    params = {"text": "a&b=c", "timestamp": "1"}
    assert vonage.signed_string(params) == "&text=a_b_c&timestamp=1"


def test_no_secret_validates_nothing() -> None:
    params = {"a": "1", "sig": vonage.compute_signature({"a": "1"}, "", "sha256")}
    assert not vonage.signature_valid(params, "", "sha256")


# --- inbound ------------------------------------------------------------------------------


def test_post_form_fixture() -> None:
    fixture = load("vonage_inbound_sms_post_form.json")
    params = dict(parse_qsl(fixture["request"]["body"], keep_blank_values=True))
    sms = vonage.parse_inbound(params)
    assert isinstance(sms, InboundSms)
    expected = fixture["expected"]
    assert sms.sender == expected["from_e164"]
    assert sms.recipient == expected["to"]  # "2020": a short code keeps its form
    assert sms.body == expected["text"]
    assert sms.provider_id == expected["message_id"]
    assert sms.raw == params


def test_signed_get_fixture_parses() -> None:
    params = query_of(load("vonage_inbound_sms_signed_SYNTHETIC.json")["request"]["url"])
    sms = vonage.parse_inbound(params)
    assert isinstance(sms, InboundSms)
    assert (sms.sender, sms.recipient, sms.body) == ("+15862151111", "+12812581111", "Msg")


CONCAT = {
    "msisdn": "33612345678",
    "to": "33939000021",
    "messageId": "0B0000004B65F62F",
    "text": "premier morceau ",
    "type": "text",
    "concat": "true",
    "concat-ref": "107",
    "concat-total": "3",
    "concat-part": "2",
}


def test_a_part_of_a_long_text() -> None:
    part = vonage.parse_inbound(CONCAT)
    assert part == Part(
        provider="vonage",
        part_id="0B0000004B65F62F",
        sender="+33612345678",
        recipient="+33939000021",
        ref="107",
        number=2,
        total=3,
        body="premier morceau ",
        raw=CONCAT,
    )


def test_binary_message_has_no_text() -> None:
    params = {**CONCAT, "type": "binary", "data": "0102", "udh": "050003"}
    del params["text"]
    for name in ("concat", "concat-ref", "concat-total", "concat-part"):
        del params[name]
    sms = vonage.parse_inbound(params)
    assert isinstance(sms, InboundSms)
    assert sms.body == ""


@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        ({"messageId": None}, "messageId"),
        ({"messageId": "has space"}, "messageId"),
        ({"messageId": "x" * 65}, "messageId"),
        ({"msisdn": ""}, "msisdn"),
        ({"msisdn": "3" * 40}, "msisdn"),
        ({"to": None}, "to"),
        ({"text": None}, "text"),
        ({"concat-part": "0"}, "concat-part"),
        ({"concat-part": "4"}, "concat-part"),
        ({"concat-total": "256"}, "concat-total"),
        ({"concat-total": "٣"}, "concat-total"),
        ({"concat-ref": None}, "concat-ref"),
        ({"concat-ref": "a b"}, "concat-ref"),
    ],
)
def test_malformed_inbound(change: dict[str, str | None], mentions: str) -> None:
    params = {k: v for k, v in {**CONCAT, **change}.items() if v is not None}
    with pytest.raises(MalformedRequest) as caught:
        vonage.parse_inbound(params)
    assert mentions in caught.value.reason


# --- delivery receipts ----------------------------------------------------------------------


def test_dlr_delivered_fixture() -> None:
    fixture = load("vonage_dlr_delivered_get.json")
    params = query_of(fixture["request"]["url"])
    assert params == fixture["parsed_params"]
    update = vonage.parse_status(params, "EUR")
    assert update is not None
    expected = fixture["expected"]
    assert update.provider_message_id == expected["message_id"]
    assert update.state is DeliveryState.DELIVERED
    assert update.error_code is None
    assert update.recipient == "+" + expected["recipient"]  # msisdn: the handset we wrote to
    assert update.price == pytest.approx(float(expected["price"]))
    assert update.currency == "EUR"
    assert update.opted_out is False


STATUS_OF = {
    "delivered": DeliveryState.DELIVERED,
    "failed": DeliveryState.FAILED,
    "sent": DeliveryState.SENT,
}


def dlr_cases() -> list[dict[str, Any]]:
    return list(load("vonage_dlr_failed_errcode.json")["cases"])


@pytest.mark.parametrize("case", dlr_cases(), ids=lambda case: case["url_query"])
def test_dlr_status_mapping(case: dict[str, Any]) -> None:
    update = vonage.parse_status(dict(parse_qsl(case["url_query"])))
    if case["expected_status"].startswith("ignored"):
        assert update is None
        return
    assert update is not None
    assert update.state is STATUS_OF[case["expected_status"]]
    if "expected_error" in case:
        code = update.error_code
        assert f"dlr:{code} {vonage.describe_error(code)}" == case["expected_error"]


def test_every_documented_status_value_is_mapped() -> None:
    values = load("vonage_dlr_failed_errcode.json")["status_values"]
    for status, meaning in values.items():
        update = vonage.parse_status({"messageId": "external1", "status": status})
        if meaning == "unknown":
            assert update is None
        else:
            assert update is not None
            assert update.state is STATUS_OF[meaning]


def test_err_code_9_is_an_opt_out() -> None:
    params = {"messageId": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab", "status": "failed"}
    update = vonage.parse_status({**params, "err-code": "9", "price": "0.00000000"})
    assert update is not None
    assert (update.state, update.error_code, update.opted_out) == (
        DeliveryState.FAILED,
        "9",
        True,
    )
    assert update.price == 0.0


def test_client_ref_is_the_reply_id() -> None:
    params = {"messageId": "0C0000002EEBDA56", "status": "delivered", "client-ref": "antirelou-7"}
    update = vonage.parse_status(params)
    assert update is not None
    assert update.provider_message_id == "antirelou-7"


@pytest.mark.parametrize(
    "params", [{"status": "delivered"}, {"messageId": "x y", "status": "failed"}]
)
def test_malformed_receipt(params: dict[str, str]) -> None:
    with pytest.raises(MalformedRequest):
        vonage.parse_status(params)


# --- sending: the fixture over real HTTP (a canned server) ------------------------------------


def mock_sender(
    status: int, body: str, seen: list[Received] | None = None
) -> AbstractContextManager[VonageSender]:
    """A sender whose API answers every request with `status` and `body`, over real HTTP."""
    return answering(
        status,
        body,
        lambda url: VonageSender(
            "nexmo-api-key", "nexmo-api-secret", api_base_url=url, currency="EUR"
        ),
        seen,
    )


def fixture_sms() -> OutgoingSms:
    form = load("vonage_send_message_requests.json")["request"]["form"]
    return OutgoingSms(1, form["from"], "+" + form["to"], form["text"], form["callback"])


def test_fixture_send_request_shape() -> None:
    fixture = load("vonage_send_message_requests.json")
    seen: list[Received] = []
    with mock_sender(200, fixture["responses"][0]["body"], seen) as sender:
        sender.send(fixture_sms())
    (request,) = seen
    assert request.method == fixture["request"]["method"]
    assert request.path == urlsplit(fixture["request"]["url"]).path
    assert f"url={fixture['request']['url']!r}" in repr(VonageSender("nexmo-api-key", "s"))
    assert request.headers["Content-Type"] == fixture["request"]["headers"]["Content-Type"]
    sent = {name: values[0] for name, values in parse_qs(request.body.decode()).items()}
    assert sent == {**fixture["request"]["form"], "client-ref": "antirelou-1"}


def test_gsm_text_is_sent_as_text() -> None:
    seen: list[Received] = []
    with mock_sender(200, '{"messages":[{"status":"0","message-id":"1"}]}', seen) as sender:
        sender.send(OutgoingSms(2, "+33939000021", "+33612345678", "Bonjour, é à è"))
    sent = parse_qs(seen[0].body.decode())
    assert sent["type"] == ["text"]
    assert "callback" not in sent
    assert "status-report-req" not in sent


def fixture_answers() -> list[dict[str, Any]]:
    return list(load("vonage_send_message_requests.json")["responses"])


@pytest.mark.parametrize("case", fixture_answers(), ids=lambda case: case["case"])
def test_fixture_send_answers(case: dict[str, Any]) -> None:
    expected = case["expected"]
    with mock_sender(case["status"], case["body"]) as sender:
        if "external_id" in expected:
            # Vonage's per-part id is not what we record: our client-ref is (see the module).
            assert sender.send(fixture_sms()).provider_message_id == "antirelou-1"
            return
        with pytest.raises(SendError) as caught:
            sender.send(fixture_sms())
    error = caught.value
    assert "nexmo-api-secret" not in str(error)
    if expected.get("retry"):
        assert (error.transient, error.maybe_sent) == (True, False)
    elif expected["error"].startswith("send:"):
        code, label = expected["error"].removeprefix("send:").split(" ", 1)
        assert error.code == code
        assert label in str(error)
    else:  # bad credentials: never retried
        assert not error.transient


def test_throttled_body_says_how_long_to_wait() -> None:
    body = load("vonage_send_message_requests.json")["responses"][2]["body"]
    with mock_sender(200, body) as sender, pytest.raises(SendError) as caught:
        sender.send(fixture_sms())
    assert caught.value.retry_after == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("code", "transient", "opted_out"),
    [(code, code in {"1", "5", "9", "10"}, code == "7") for code in vonage.SEND_ERRORS],
)
def test_every_send_status_is_classified(code: str, transient: bool, opted_out: bool) -> None:
    body = json.dumps({"messages": [{"status": code}]})
    with mock_sender(200, body) as sender, pytest.raises(SendError) as caught:
        sender.send(fixture_sms())
    assert (caught.value.transient, caught.value.maybe_sent) == (transient, False)
    assert caught.value.opted_out is opted_out
    assert caught.value.code == code


@pytest.mark.parametrize("body", ["{}", "not json", '{"messages": []}', "[]"])
def test_unreadable_success_may_have_been_sent(body: str) -> None:
    with mock_sender(200, body) as sender, pytest.raises(SendError) as caught:
        sender.send(fixture_sms())
    assert (caught.value.transient, caught.value.maybe_sent) == (True, True)


def test_one_accepted_part_is_a_send() -> None:
    body = '{"messages":[{"status":"0","message-id":"A","message-price":"0.04"},{"status":"5"}]}'
    with mock_sender(200, body) as sender:
        result = sender.send(fixture_sms())
    assert result.provider_message_id == "antirelou-1"
    assert result.price == pytest.approx(0.04)


def test_repr_hides_the_secret() -> None:
    sender = VonageSender("key", "super-secret")
    try:
        assert "super-secret" not in repr(sender)
    finally:
        sender.close()


# --- sending: real HTTP against the fake API --------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeVonage]:
    with FakeVonage(hang_seconds=1.0) as running:
        yield running


def make_sender(fake: FakeVonage, secret: str | None = None, timeout: float = 5.0) -> VonageSender:
    return VonageSender(
        fake.api_key,
        fake.api_secret if secret is None else secret,
        api_base_url=fake.base_url,
        timeout=timeout,
        currency="EUR",
    )


LONG = OutgoingSms(9, "+33939000021", "+33612345678", "Bonjour ’ " * 10, "https://d.example/s")


def test_long_reply_prices_every_part(fake: FakeVonage) -> None:
    sender = make_sender(fake)
    try:
        result = sender.send(LONG)
    finally:
        sender.close()
    parts = 2  # 100 UCS-2 characters: 67 per part
    assert result.price == pytest.approx(parts * float(PRICE_PER_PART))
    assert result.currency == "EUR"
    (form,) = fake.requests
    assert (form["type"], form["client-ref"], form["status-report-req"]) == (
        "unicode",
        "antirelou-9",
        "1",
    )


def test_wrong_credentials_are_permanent(fake: FakeVonage) -> None:
    sender = make_sender(fake, secret="not-it")
    try:
        with pytest.raises(SendError) as caught:
            sender.send(LONG)
    finally:
        sender.close()
    assert (caught.value.transient, caught.value.code) == (False, "4")
    assert "not-it" not in str(caught.value)


def test_barred_number_is_an_opt_out(fake: FakeVonage) -> None:
    fake.script("barred")
    sender = make_sender(fake)
    try:
        with pytest.raises(SendError) as caught:
            sender.send(LONG)
    finally:
        sender.close()
    assert (caught.value.transient, caught.value.opted_out) == (False, True)


def test_hang_is_ambiguous_and_assumed_sent(fake: FakeVonage) -> None:
    fake.script("hang")
    sender = make_sender(fake, timeout=0.3)
    try:
        with pytest.raises(SendError) as caught:
            sender.send(LONG)
        found = sender.find_sent(LONG, datetime.now(UTC))
    finally:
        sender.close()
    assert (caught.value.transient, caught.value.maybe_sent) == (True, True)
    assert found is not None
    assert found.provider_message_id == "antirelou-9"  # the id its receipts will carry
