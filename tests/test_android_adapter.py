"""The SMS Gateway for Android adapter against the shared fixture and a fake phone API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from antirelou.providers import android
from antirelou.providers.android import AndroidSender
from antirelou.providers.base import DeliveryState, OutgoingSms, SendError
from antirelou.providers.errors import MalformedRequest
from tests.fakes.android_api import FakeAndroid

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "providers"
FIXTURE = "android_sms_gateway_sms_received.json"
FIVE_MINUTES = timedelta(minutes=5)


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / FIXTURE).read_text(encoding="utf-8"))
    return data


def test_every_android_fixture_is_covered() -> None:
    assert {path.name for path in FIXTURES.glob("android_*.json")} == {FIXTURE}


# --- signatures ---------------------------------------------------------------------------


def signed_at(fixture: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(fixture["request"]["headers"]["X-Timestamp"]), tz=UTC)


def check(fixture: dict[str, Any], **changes: Any) -> str | None:
    request = fixture["request"]
    args: dict[str, Any] = {
        "raw_body": request["body"].encode(),
        "signature": request["headers"]["X-Signature"],
        "timestamp": request["headers"]["X-Timestamp"],
        "signing_key": fixture["signing_key"],
        "now": signed_at(fixture) + timedelta(seconds=20),
        "max_age": FIVE_MINUTES,
    }
    return android.refusal(**{**args, **changes})


def test_fixture_signature() -> None:
    fixture = load()
    request = fixture["request"]
    computed = android.compute_signature(
        request["body"].encode(), request["headers"]["X-Timestamp"], fixture["signing_key"]
    )
    assert computed == request["headers"]["X-Signature"]
    assert fixture["expected"]["signature_valid"] is True
    assert check(fixture) is None
    assert check(fixture, signature=request["headers"]["X-Signature"].upper()) is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"signing_key": "another-key"}, "X-Signature"),
        ({"signing_key": ""}, "X-Signature"),
        ({"signature": ""}, "X-Signature"),
        ({"signature": "not hex"}, "X-Signature"),
        ({"raw_body": b'{"event":"sms:received"}'}, "X-Signature"),
        ({"timestamp": "1719045972"}, "X-Signature"),  # the timestamp is signed too
    ],
)
def test_forged_requests_are_refused(changes: dict[str, Any], reason: str) -> None:
    refused = check(load(), **changes)
    assert refused is not None
    assert reason in refused


@pytest.mark.parametrize("offset", [timedelta(minutes=6), -timedelta(minutes=6)])
def test_stale_or_future_timestamps_are_refused(offset: timedelta) -> None:
    fixture = load()
    assert check(fixture, now=signed_at(fixture) + offset) == "stale or missing X-Timestamp"


def test_body_bytes_matter_not_the_json() -> None:
    """Re-serialising the JSON (spaces) changes the signature: the raw body is what counts."""
    fixture = load()
    pretty = json.dumps(json.loads(fixture["request"]["body"]), indent=1).encode()
    assert check(fixture, raw_body=pretty) is not None


# --- webhooks -------------------------------------------------------------------------------


def event() -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(load()["request"]["body"])
    return decoded


def test_fixture_parsed() -> None:
    fixture = load()
    expected = fixture["expected"]
    parsed = event()
    assert android.event_of(parsed) == expected["event"]
    sms = android.parse_inbound(parsed)
    assert sms.provider == "android"
    assert sms.provider_id == expected["event_id_for_dedup"]
    assert sms.body == expected["text"]
    assert sms.recipient == expected["to"]
    # A national sender is read in the line's country: +1 here.
    assert sms.sender == "+1" + expected["from"]
    assert sms.raw["payload.messageId"] == "abc123"
    assert sms.raw["webhookId"] == "LreFUt-Z3sSq0JufY9uWB"


def test_older_apps_phone_number_and_no_recipient() -> None:
    payload = {"messageId": "abc", "message": "Salut", "phoneNumber": "0612345678"}
    sms = android.parse_inbound(
        {"id": "e1", "event": "sms:received", "payload": payload}, "+33939000021"
    )
    assert (sms.sender, sms.recipient) == ("+33612345678", "+33939000021")


def test_international_senders_are_kept() -> None:
    payload = {"message": "x", "sender": "+447700900123", "recipient": "+33939000021"}
    sms = android.parse_inbound({"id": "e2", "event": "sms:received", "payload": payload})
    assert sms.sender == "+447700900123"


def test_alphanumeric_sender_is_kept() -> None:
    payload = {"message": "x", "sender": "AMAZON", "recipient": "+33939000021"}
    sms = android.parse_inbound({"id": "e3", "event": "sms:received", "payload": payload})
    assert sms.sender == "AMAZON"


@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        ({"id": None}, "id"),
        ({"id": "has space"}, "id"),
        ({"payload": None}, "payload"),
        ({"payload": "text"}, "payload"),
        ({"payload": {"message": "x", "recipient": "+33939000021"}}, "payload.sender"),
        ({"payload": {"sender": "+33612345678", "recipient": "+1"}}, "payload.message"),
        ({"payload": {"message": "x", "sender": "+33612345678"}}, "payload.recipient"),
        ({"payload": {"message": "x", "sender": "1" * 40, "recipient": "+1"}}, "payload.sender"),
    ],
)
def test_malformed_events(change: dict[str, Any], mentions: str) -> None:
    parsed = {k: v for k, v in {**event(), **change}.items() if v is not None}
    with pytest.raises(MalformedRequest) as caught:
        android.parse_inbound(parsed)
    assert mentions in caught.value.reason


@pytest.mark.parametrize("value", [None, "", 3])
def test_event_kind_is_required(value: Any) -> None:
    with pytest.raises(MalformedRequest):
        android.event_of({"event": value})


@pytest.mark.parametrize(
    ("kind", "state"),
    [
        ("sms:sent", DeliveryState.SENT),
        ("sms:delivered", DeliveryState.DELIVERED),
        ("sms:failed", DeliveryState.FAILED),
    ],
)
def test_status_events(kind: str, state: DeliveryState) -> None:
    payload = {"messageId": "antirelou-7-0a1b2c3d", "phoneNumber": "+33612345678"}
    if kind == "sms:failed":
        payload["reason"] = "RESULT_ERROR_GENERIC_FAILURE"
    update = android.parse_status({"id": "e4", "event": kind, "payload": payload})
    assert (update.provider_message_id, update.state) == ("antirelou-7-0a1b2c3d", state)
    assert update.recipient == "+33612345678"
    assert (update.error_code is not None) is (state is DeliveryState.FAILED)


def test_received_is_not_a_status() -> None:
    with pytest.raises(MalformedRequest):
        android.parse_status(event())


def test_flatten_keeps_every_field_as_text() -> None:
    flat = android.flatten({"a": None, "b": True, "c": 1, "d": {"e": None, "f": "g"}})
    assert flat == {"a": "", "b": "true", "c": "1", "d.e": "", "d.f": "g"}


# --- sending against the fake phone -----------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeAndroid]:
    with FakeAndroid(hang_seconds=1.0) as running:
        yield running


def make_sender(
    fake: FakeAndroid, password: str | None = None, timeout: float = 5.0
) -> AndroidSender:
    return AndroidSender(
        fake.base_url,
        fake.username,
        fake.password if password is None else password,
        timeout=timeout,
        price_per_segment=0.01,
    )


@pytest.fixture
def sender(fake: FakeAndroid) -> Iterator[AndroidSender]:
    real = make_sender(fake)
    yield real
    real.close()


SMS = OutgoingSms(7, "+33939000021", "+33612345678", "Bonjour, ce n'est pas son numéro.")


def send_error(sender: AndroidSender, sms: OutgoingSms = SMS) -> SendError:
    with pytest.raises(SendError) as caught:
        sender.send(sms)
    assert "android-pass" not in str(caught.value)
    return caught.value


def test_send_ok_with_our_id(fake: FakeAndroid, sender: AndroidSender) -> None:
    result = sender.send(SMS)
    message_id = android.gateway_id(SMS)
    assert message_id.startswith("antirelou-7-")
    assert result.provider_message_id == message_id
    assert result.price == pytest.approx(0.01)
    assert result.currency is None
    assert fake.requests == [
        {
            "id": message_id,
            "textMessage": {"text": SMS.body},
            "phoneNumbers": ["+33612345678"],
            "withDeliveryReport": True,
            "ttl": 86400,
        }
    ]
    assert fake.calls[0].authorized


def test_gateway_id_is_stable_and_per_recipient() -> None:
    again = OutgoingSms(7, SMS.sender, SMS.recipient, "another body")
    other = OutgoingSms(7, SMS.sender, "+33600000000", SMS.body)
    assert android.gateway_id(again) == android.gateway_id(SMS)
    assert android.gateway_id(other) != android.gateway_id(SMS)
    assert len(android.gateway_id(SMS)) <= 64


def test_a_retry_never_duplicates(fake: FakeAndroid, sender: AndroidSender) -> None:
    first = sender.send(SMS)
    second = sender.send(SMS)  # the phone answers 409: it already has this id
    assert first.provider_message_id == second.provider_message_id
    assert len(fake.messages) == 1


def test_older_app_duplicate_500_is_reconciled() -> None:
    with FakeAndroid(duplicate_status=500) as fake:
        sender = make_sender(fake)
        try:
            sender.send(SMS)
            error = send_error(sender)
            found = sender.find_sent(SMS, datetime.now(UTC))
        finally:
            sender.close()
        assert len(fake.messages) == 1
    assert (error.transient, error.maybe_sent) == (True, True)
    assert found is not None


def test_find_sent_nothing_after_plain_500(fake: FakeAndroid, sender: AndroidSender) -> None:
    fake.script("500")
    assert send_error(sender).maybe_sent
    assert sender.find_sent(SMS, datetime.now(UTC)) is None
    assert fake.calls[-1].path == f"/message/{android.gateway_id(SMS)}"


@pytest.mark.parametrize("behaviour", ["500", "hang"])
def test_failed_lookup_raises(fake: FakeAndroid, behaviour: str) -> None:
    real = make_sender(fake, timeout=0.3)
    fake.script_lookup(behaviour)
    try:
        with pytest.raises(SendError) as caught:
            real.find_sent(SMS, datetime.now(UTC))
    finally:
        real.close()
    assert caught.value.maybe_sent


def test_hang_is_ambiguous_and_found(fake: FakeAndroid) -> None:
    real = make_sender(fake, timeout=0.3)
    fake.script("hang")
    try:
        error = send_error(real)
        found = real.find_sent(SMS, datetime.now(UTC))
    finally:
        real.close()
    assert error.maybe_sent
    assert found is not None


def test_wrong_credentials_are_permanent(fake: FakeAndroid) -> None:
    real = make_sender(fake, password="not-it")
    try:
        error = send_error(real)
    finally:
        real.close()
    assert (error.transient, error.code) == (False, "401")
    assert "not-it" not in str(error)


def test_throttled_waits(fake: FakeAndroid, sender: AndroidSender) -> None:
    fake.script("429")
    error = send_error(sender)
    assert (error.transient, error.maybe_sent, error.retry_after) == (True, False, 2.0)


def test_repr_hides_the_password() -> None:
    sender = AndroidSender("http://127.0.0.1:1", "sms", "super-secret")
    try:
        assert "super-secret" not in repr(sender)
    finally:
        sender.close()
