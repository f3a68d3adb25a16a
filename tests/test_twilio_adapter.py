"""The Twilio adapter against the shared provider fixtures and a fake API over real HTTP."""

from __future__ import annotations

import hashlib
import json
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from antirelou.providers.base import DeliveryState, OutgoingSms, Sender, SendError
from antirelou.providers.errors import MalformedRequest
from antirelou.providers.twilio import (
    TwilioSender,
    compute_signature,
    parse_inbound,
    parse_status,
    validate_signature,
)
from tests.fakes.canned import Received, answering
from tests.fakes.twilio_api import FakeTwilio

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "providers"
# The courier mock channel's token. The bad-signature fixture names none (its signature is
# garbage under any token); it comes from the same channel as the valid ones.
COURIER_TOKEN = "6789"
SID = "SMe287d7109a5a925f182f0e07fe5b223b"

INBOUND = [
    "twilio_inbound_sms_valid.json",
    "twilio_inbound_mms_with_text.json",
    "twilio_inbound_sms_french_utf8_SYNTHETIC.json",
]
STATUS = ["twilio_status_delivered.json", "twilio_status_failed_21610_stop.json"]
SIGNED = [*INBOUND, *STATUS, "twilio_inbound_sms_bad_signature.json"]
OTHER = ["twilio_send_message_requests.json", "twilio_signature_test_vectors.json"]


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def form_pairs(body: str) -> list[tuple[str, str]]:
    """Decode a form body the way the web layer must: blank values kept, UTF-8."""
    return parse_qsl(body, keep_blank_values=True, strict_parsing=True, encoding="utf-8")


def fixture_token(fixture: dict[str, Any]) -> str:
    match = re.search(r"auth token '([^']+)'", fixture["provenance"].get("signature", ""))
    return match.group(1) if match else COURIER_TOKEN


def test_every_twilio_fixture_is_covered() -> None:
    on_disk = {path.name for path in FIXTURES.glob("twilio_*.json")}
    assert on_disk == {*SIGNED, *OTHER}


# --- webhook fixtures ---------------------------------------------------------------------


@pytest.mark.parametrize("name", SIGNED)
def test_fixture_signature(name: str) -> None:
    fixture = load(name)
    request = fixture["request"]
    pairs = form_pairs(request["body"])
    assert dict(pairs) == fixture["parsed_params"]
    signature = request["headers"]["X-Twilio-Signature"]
    expected = fixture["expected"]["signature_valid"]
    token = fixture_token(fixture)
    assert validate_signature(request["url"], pairs, signature, token) is expected
    assert validate_signature(request["url"], dict(pairs), signature, token) is expected
    assert validate_signature(request["url"], pairs, signature, "wrong-token") is False


@pytest.mark.parametrize("name", INBOUND)
def test_fixture_inbound_parsed(name: str) -> None:
    fixture = load(name)
    params = dict(form_pairs(fixture["request"]["body"]))
    expected = fixture["expected"]
    sms = parse_inbound(params)
    assert sms.provider == "twilio"
    assert sms.sender == expected["from"]
    assert sms.recipient == expected.get("to", params["To"])
    assert sms.body == expected["body"]
    assert sms.provider_id == expected.get("message_sid", params["MessageSid"])
    assert sms.num_media == expected.get("num_media", 0)
    assert sms.parts == int(params["NumSegments"])  # what Twilio bills receiving it
    assert sms.raw == params


@pytest.mark.parametrize(
    ("given", "parts"),
    [
        ("2", 2),
        ("255", 255),
        ("0", None),
        ("256", None),
        ("-1", None),
        ("1.5", None),
        ("²", None),
        ("", None),
    ],
)
def test_num_segments_outside_a_part_count_is_left_to_our_count(
    given: str, parts: int | None
) -> None:
    params = load("twilio_inbound_sms_valid.json")["parsed_params"] | {"NumSegments": given}
    assert parse_inbound(params).parts == parts


def test_fixture_mms_media_count() -> None:
    sms = parse_inbound(load("twilio_inbound_mms_with_text.json")["parsed_params"])
    assert sms.num_media == 2
    assert [sms.raw[f"MediaUrl{i}"] for i in range(sms.num_media)] == ["cat.jpg", "dog.jpg"]


def test_fixture_french_body_decoded_exactly() -> None:
    fixture = load("twilio_inbound_sms_french_utf8_SYNTHETIC.json")
    sms = parse_inbound(dict(form_pairs(fixture["request"]["body"])))
    assert sms.body == "Bonjour, ça marche ? Réponse « oui » ’"
    assert sms.body == fixture["expected"]["body"]


def test_fixture_status_delivered() -> None:
    fixture = load("twilio_status_delivered.json")
    update = parse_status(dict(form_pairs(fixture["request"]["body"])))
    assert update.provider_message_id == fixture["expected"]["message_sid"]
    assert update.state is DeliveryState.DELIVERED
    assert update.error_code is None
    assert update.opted_out is False


def test_fixture_status_failed_21610_is_an_opt_out() -> None:
    fixture = load("twilio_status_failed_21610_stop.json")
    expected = fixture["expected"]
    update = parse_status(dict(form_pairs(fixture["request"]["body"])))
    assert update.provider_message_id == expected["message_sid"]
    assert update.state is DeliveryState.FAILED
    assert update.error_code == expected["error_code"]
    assert update.opted_out is True
    assert update.recipient == expected["opted_out_number"]


# --- signature vectors ----------------------------------------------------------------------


def vectors() -> list[dict[str, Any]]:
    data = load("twilio_signature_test_vectors.json")
    return [{"auth_token": data["auth_token"], **case} for case in data["cases"]]


@pytest.mark.parametrize("case", vectors(), ids=lambda case: case["name"])
def test_signature_vector(case: dict[str, Any]) -> None:
    url, token, expected = case["url"], case["auth_token"], case["expected"]
    if "bodySHA256" in url:
        body = case["body"].encode("utf-8")
        assert hashlib.sha256(body).hexdigest() == case["expected_body_sha256_hex"]
        assert compute_signature(url, {}, token) == expected
        assert validate_signature(url, {}, expected, token, raw_body=body)
        assert not validate_signature(url, {}, expected, token, raw_body=body + b" ")
        assert not validate_signature(url, {}, expected, token)  # no body: cannot vouch for it
    elif "body" in case:
        pairs = form_pairs(case["body"])
        assert compute_signature(url, pairs, token) == expected
        assert validate_signature(url, pairs, expected, token)
        non_blank = [(name, value) for name, value in pairs if value]
        assert compute_signature(url, non_blank, token) == case["wrong_if_blank_values_dropped"]
    elif "params_multi" in case:
        pairs = [(name, value) for name, value in case["params_multi"]]
        assert compute_signature(url, pairs, token) == expected
        assert validate_signature(url, pairs, expected, token)
    else:
        assert validate_signature(url, case["params"], expected, token)
        if "string_to_sign" in case:
            assert (
                url + "".join(name + case["params"][name] for name in sorted(case["params"]))
                == (case["string_to_sign"])
            )
            assert compute_signature(url, case["params"], token) == expected


PARAMS = {"CallSid": "CA1234567890ABCDE", "Digits": "1234"}


@pytest.mark.parametrize(
    ("signed_url", "received_url"),
    [
        ("https://example.com/hook?a=1", "https://example.com:443/hook?a=1"),
        ("https://example.com:443/hook?a=1", "https://example.com/hook?a=1"),
        ("http://example.com/hook", "http://example.com:80/hook"),
        ("http://example.com:80/hook", "http://example.com/hook"),
    ],
)
def test_default_port_variants_accepted(signed_url: str, received_url: str) -> None:
    signature = compute_signature(signed_url, PARAMS, "tok")
    assert validate_signature(received_url, PARAMS, signature, "tok")


@pytest.mark.parametrize(
    ("signed_url", "received_url"),
    [
        ("http://example.com/hook", "http://example.com:1234/hook"),
        ("http://example.com:1234/hook", "http://example.com/hook"),
        ("https://example.com/hook", "https://example.com:80/hook"),
        ("https://example.com/hook", "http://example.com/hook"),
        ("https://example.com/hook", "https://example.com/hook?x=1"),
    ],
)
def test_other_url_changes_refused(signed_url: str, received_url: str) -> None:
    signature = compute_signature(signed_url, PARAMS, "tok")
    assert not validate_signature(received_url, PARAMS, signature, "tok")


@pytest.mark.parametrize("signature", ["", "é", "invalidsig"])
def test_missing_or_junk_signature_refused(signature: str) -> None:
    assert not validate_signature("https://example.com/hook", PARAMS, signature, "tok")


def test_tampered_param_refused() -> None:
    signature = compute_signature("https://example.com/hook", PARAMS, "tok")
    tampered = {**PARAMS, "Digits": "9999"}
    assert not validate_signature("https://example.com/hook", tampered, signature, "tok")


# --- parse errors ---------------------------------------------------------------------------

VALID_INBOUND = {"MessageSid": SID, "From": "+33612345678", "To": "+33939000000", "Body": "x"}


@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        ({"MessageSid": None}, "MessageSid"),
        ({"MessageSid": ""}, "MessageSid"),
        ({"From": None}, "From"),
        ({"From": " "}, "From"),
        ({"To": None}, "To"),
        ({"To": ""}, "To"),
        ({"MessageSid": "CA" + "0" * 32}, "MessageSid"),
        ({"MessageSid": "SM" + "0" * 31}, "MessageSid"),
        ({"MessageSid": "SM" + "g" * 32}, "MessageSid"),
        ({"MessageSid": SID + "\n"}, "MessageSid"),
        ({"NumMedia": "abc"}, "NumMedia"),
        ({"NumMedia": "-1"}, "NumMedia"),
        ({"NumMedia": "1.5"}, "NumMedia"),
        ({"NumMedia": "٣"}, "NumMedia"),  # an Arabic-Indic digit: int() would accept it
    ],
)
def test_parse_inbound_malformed(change: dict[str, str | None], mentions: str) -> None:
    params = {**VALID_INBOUND, **change}
    clean = {name: value for name, value in params.items() if value is not None}
    with pytest.raises(MalformedRequest) as caught:
        parse_inbound(clean)
    assert mentions in caught.value.reason
    assert isinstance(caught.value, ValueError)


def test_parse_inbound_mms_without_text() -> None:
    sms = parse_inbound(
        {**VALID_INBOUND, "Body": "", "NumMedia": "1", "MessageSid": "MM" + "a" * 32}
    )
    assert sms.body == ""
    assert sms.num_media == 1


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("queued", DeliveryState.QUEUED),
        ("accepted", DeliveryState.QUEUED),
        ("sending", DeliveryState.QUEUED),
        ("sent", DeliveryState.SENT),
        ("delivered", DeliveryState.DELIVERED),
        ("read", DeliveryState.DELIVERED),
        ("undelivered", DeliveryState.UNDELIVERED),
        ("failed", DeliveryState.FAILED),
    ],
)
def test_parse_status_states(status: str, state: DeliveryState) -> None:
    assert parse_status({"MessageSid": SID, "MessageStatus": status}).state is state


@pytest.mark.parametrize(
    "params",
    [
        {"MessageSid": SID, "MessageStatus": "exploded"},
        {"MessageSid": SID},
        {"MessageStatus": "sent"},
        {"MessageSid": "nope", "MessageStatus": "sent"},
    ],
)
def test_parse_status_malformed(params: dict[str, str]) -> None:
    with pytest.raises(MalformedRequest):
        parse_status(params)


@pytest.mark.parametrize(
    ("price", "expected"),
    [("-0.07627", 0.07627), ("0.0075", 0.0075), ("", None), ("abc", None), ("nan", None)],
)
def test_parse_status_price(price: str, expected: float | None) -> None:
    update = parse_status({"MessageSid": SID, "MessageStatus": "sent", "Price": price})
    assert update.price == (pytest.approx(expected) if expected is not None else None)


def test_parse_status_other_error_is_not_an_opt_out() -> None:
    update = parse_status({"MessageSid": SID, "MessageStatus": "undelivered", "ErrorCode": "30007"})
    assert update.error_code == "30007"
    assert update.opted_out is False
    assert update.recipient is None


KEYS = st.sampled_from(["MessageSid", "From", "To", "Body", "NumMedia"]) | st.text(max_size=12)
VALUES = st.sampled_from([SID, "", " ", "2", "-1", "+33612345678"]) | st.text(max_size=40)


@given(st.dictionaries(KEYS, VALUES, max_size=8))
def test_parse_inbound_only_raises_malformed(params: dict[str, str]) -> None:
    try:
        sms = parse_inbound(params)
    except MalformedRequest as exc:
        reason = exc.reason
    else:
        assert sms.provider_id == params["MessageSid"]
        assert sms.num_media >= 0
        return
    assert reason


# --- sending: the fixture's requests and answers, over real HTTP -----------------------------

SendCase = tuple[int, str, dict[str, object]]


def mock_sender(
    status: int, body: str, seen: list[Received] | None = None
) -> AbstractContextManager[TwilioSender]:
    """A sender whose API answers every request with `status` and `body`, over real HTTP."""
    return answering(
        status, body, lambda url: TwilioSender("accountSID", "authToken", api_base_url=url), seen
    )


def fixture_sms() -> OutgoingSms:
    form = load("twilio_send_message_requests.json")["request"]["form"]
    return OutgoingSms(1, form["From"], form["To"], form["Body"], form["StatusCallback"])


def test_fixture_send_request_shape() -> None:
    fixture = load("twilio_send_message_requests.json")
    seen: list[Received] = []
    with mock_sender(201, '{"sid": "1002"}', seen) as sender:
        result = sender.send(fixture_sms())
    assert result.provider_message_id == "1002"
    (request,) = seen
    expected = fixture["request"]
    assert request.method == expected["method"]
    assert request.path == urlsplit(expected["url"]).path
    assert TwilioSender("accountSID", "authToken").messages_url == expected["url"]
    for header in ("Authorization", "Content-Type", "Accept"):
        assert request.headers[header] == expected["headers"][header]
    sent = {name: values[0] for name, values in parse_qs(request.body.decode()).items()}
    assert sent == expected["form"]


def fixture_answers() -> list[dict[str, Any]]:
    return list(load("twilio_send_message_requests.json")["responses"])


@pytest.mark.parametrize("case", fixture_answers(), ids=lambda case: case["case"])
def test_fixture_send_answers(case: dict[str, Any]) -> None:
    expected = case["expected"]
    with mock_sender(case["status"], case.get("body", "")) as sender:
        if "external_id" in expected:
            assert sender.send(fixture_sms()).provider_message_id == expected["external_id"]
            return
        with pytest.raises(SendError) as caught:
            sender.send(fixture_sms())
    error = caught.value
    assert "authToken" not in str(error)
    if expected.get("retry") is True:
        assert error.transient
        assert error.maybe_sent is expected["processed_by_twilio"]
    elif expected.get("retry") is False:
        assert not error.transient
        assert error.opted_out is expected.get("mark_opted_out", False)
        if "error_code" in expected:
            assert error.code == expected["error_code"]
    elif isinstance(expected.get("retry"), str):  # "maybe": reconcile before any retry
        assert error.transient
        assert error.maybe_sent
    else:  # 401
        assert not error.transient
        assert error.code == "401"


@pytest.mark.parametrize(
    ("status", "body", "check"),
    [
        (201, '{"sid": "SMx", "price": "-0.0075"}', lambda r: r.price == pytest.approx(0.0075)),
        (201, '{"sid": "SMx", "price": null}', lambda r: r.price is None),
    ],
)
def test_send_price(status: int, body: str, check: Callable[[Any], bool]) -> None:
    with mock_sender(status, body) as sender:
        assert check(sender.send(fixture_sms()))


@pytest.mark.parametrize("body", ["{}", "not json", '{"sid": ""}', "[]"])
def test_send_2xx_without_sid_may_have_been_sent(body: str) -> None:
    with mock_sender(201, body) as sender, pytest.raises(SendError) as caught:
        sender.send(fixture_sms())
    assert caught.value.transient
    assert caught.value.maybe_sent


def test_repr_hides_the_token() -> None:
    sender = TwilioSender("AC" + "1" * 32, "super-secret-token")
    try:
        assert "super-secret-token" not in repr(sender)
        assert "super-secret-token" not in str(sender)
    finally:
        sender.close()


# --- sending: real HTTP against the fake API ------------------------------------------------


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio(hang_seconds=1.0) as fake:
        yield fake


def make_sender(fake: FakeTwilio, token: str | None = None, timeout: float = 5.0) -> TwilioSender:
    return TwilioSender(
        fake.account_sid,
        fake.auth_token if token is None else token,
        api_base_url=fake.base_url,
        timeout=timeout,
    )


@pytest.fixture
def sender(fake_twilio: FakeTwilio) -> Iterator[TwilioSender]:
    real = make_sender(fake_twilio)
    yield real
    real.close()


SMS = OutgoingSms(
    reference=7,
    sender="+33939000000",
    recipient="+33612345678",
    body="Bonjour, ça marche ? « oui » ’",
    status_callback="https://decoy.example/twilio/status?ref=7",
)


def send_error(sender: TwilioSender, sms: OutgoingSms = SMS) -> SendError:
    with pytest.raises(SendError) as caught:
        sender.send(sms)
    assert "test-token" not in str(caught.value)
    return caught.value


def test_sender_is_a_sender(sender: TwilioSender) -> None:
    as_protocol: Sender = sender
    assert as_protocol.name == "twilio"


def test_send_ok(fake_twilio: FakeTwilio, sender: TwilioSender) -> None:
    result = sender.send(SMS)
    (message,) = fake_twilio.messages
    assert result.provider_message_id == message["sid"]
    assert re.fullmatch(r"SM[0-9a-f]{32}", result.provider_message_id)
    assert result.price is None
    assert fake_twilio.requests == [
        {
            "To": SMS.recipient,
            "From": SMS.sender,
            "Body": SMS.body,
            "StatusCallback": SMS.status_callback,
        }
    ]
    assert fake_twilio.calls[0].authorized
    assert message["body"] == SMS.body


def test_send_without_status_callback(fake_twilio: FakeTwilio, sender: TwilioSender) -> None:
    sender.send(OutgoingSms(8, SMS.sender, SMS.recipient, "hi"))
    assert fake_twilio.requests == [{"To": SMS.recipient, "From": SMS.sender, "Body": "hi"}]


def test_send_wrong_credentials(fake_twilio: FakeTwilio) -> None:
    bad = make_sender(fake_twilio, token="not-the-token")
    try:
        error = send_error(bad)
    finally:
        bad.close()
    assert not error.transient
    assert error.code == "20003"
    assert "credentials" in str(error)
    assert "not-the-token" not in str(error)
    assert fake_twilio.calls[0].authorized is False
    assert fake_twilio.messages == []


@pytest.mark.parametrize(
    ("behaviour", "transient", "maybe_sent", "opted_out", "code", "created", "recipient"),
    [
        ("500", True, True, False, "20500", 0, False),
        ("500_after_create", True, True, False, "20500", 1, False),
        ("429", True, False, False, "20429", 0, False),
        ("21610", False, False, True, "21610", 0, False),
        ("21211", False, False, False, "21211", 0, True),
        ("21614", False, False, False, "21614", 0, True),
        ("21408", False, False, False, "21408", 0, False),
    ],
)
def test_send_errors(
    fake_twilio: FakeTwilio,
    sender: TwilioSender,
    behaviour: str,
    transient: bool,
    maybe_sent: bool,
    opted_out: bool,
    code: str,
    created: int,
    recipient: bool,
) -> None:
    fake_twilio.script(behaviour)
    error = send_error(sender)
    assert error.recipient_fault is recipient
    assert (error.transient, error.maybe_sent, error.opted_out, error.code) == (
        transient,
        maybe_sent,
        opted_out,
        code,
    )
    assert len(fake_twilio.messages) == created
    assert sender.send(SMS).provider_message_id  # the script is used up: "ok" again


def test_send_429_retry_after(fake_twilio: FakeTwilio, sender: TwilioSender) -> None:
    fake_twilio.script("429")
    assert send_error(sender).retry_after == 1.0


@pytest.mark.parametrize("hang_creates", [True, False])
def test_send_hang_is_ambiguous(hang_creates: bool) -> None:
    since = datetime.now(UTC)
    with FakeTwilio(hang_seconds=1.0, hang_creates=hang_creates) as fake:
        sender = make_sender(fake, timeout=0.3)
        try:
            fake.script("hang")
            error = send_error(sender)
            found = sender.find_sent(SMS, since)
        finally:
            sender.close()
    assert error.transient
    assert error.maybe_sent
    assert (found is not None) is hang_creates


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_connection_refused_was_not_sent() -> None:
    sender = TwilioSender(
        "AC" + "0" * 32, "test-token", api_base_url=f"http://127.0.0.1:{free_port()}"
    )
    try:
        error = send_error(sender)
        assert error.transient
        assert not error.maybe_sent
        with pytest.raises(SendError) as lookup:
            sender.find_sent(SMS, datetime.now(UTC))
    finally:
        sender.close()
    assert lookup.value.transient
    assert lookup.value.maybe_sent


# --- reconciliation -----------------------------------------------------------------------


def test_find_sent_after_500_after_create(fake_twilio: FakeTwilio, sender: TwilioSender) -> None:
    since = datetime.now(UTC)
    fake_twilio.script("500_after_create")
    assert send_error(sender).maybe_sent
    found = sender.find_sent(SMS, since)
    (message,) = fake_twilio.messages
    assert found is not None
    assert found.provider_message_id == message["sid"]
    query = fake_twilio.calls[-1].query
    assert query == {
        "To": SMS.recipient,
        "From": SMS.sender,
        "PageSize": "50",
    }


def test_find_sent_nothing_after_plain_500(fake_twilio: FakeTwilio, sender: TwilioSender) -> None:
    since = datetime.now(UTC)
    fake_twilio.script("500")
    assert send_error(sender).maybe_sent
    assert sender.find_sent(SMS, since) is None


def test_find_sent_ignores_other_and_older_messages(
    fake_twilio: FakeTwilio, sender: TwilioSender
) -> None:
    sender.send(OutgoingSms(1, SMS.sender, SMS.recipient, "another text"))
    sender.send(OutgoingSms(2, SMS.sender, "+33600000000", SMS.body))
    assert sender.find_sent(SMS, datetime.now(UTC)) is None
    sender.send(SMS)
    assert sender.find_sent(SMS, datetime.now(UTC) + timedelta(minutes=1)) is None
    assert sender.find_sent(SMS, datetime.now(UTC) - timedelta(minutes=1)) is not None


def test_find_sent_lookup_failure_raises(fake_twilio: FakeTwilio, sender: TwilioSender) -> None:
    fake_twilio.script_list("500")
    with pytest.raises(SendError) as caught:
        sender.find_sent(SMS, datetime.now(UTC))
    assert caught.value.transient
    assert caught.value.maybe_sent


def test_find_sent_lookup_timeout_raises() -> None:
    with FakeTwilio(hang_seconds=1.0) as fake:
        sender = make_sender(fake, timeout=0.3)
        try:
            fake.script_list("hang")
            with pytest.raises(SendError) as caught:
                sender.find_sent(SMS, datetime.now(UTC))
        finally:
            sender.close()
    assert caught.value.maybe_sent


def test_find_sent_naive_since_is_utc(fake_twilio: FakeTwilio, sender: TwilioSender) -> None:
    since = datetime.now(UTC).replace(tzinfo=None)
    sender.send(SMS)
    assert sender.find_sent(SMS, since) is not None
