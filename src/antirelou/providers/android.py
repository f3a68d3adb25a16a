"""SMS Gateway for Android adapter: a phone with the open-source app as the line's provider.

The app posts JSON events to our webhooks (`sms:received` for texts, `sms:sent`,
`sms:delivered` and `sms:failed` for our replies), signed with X-Signature =
hex(HMAC-SHA256(signing key, raw body + X-Timestamp)). It re-signs every attempt, so a
short freshness window costs nothing. We send through the app's API (`POST /message`,
local server or cloud) with our own message id: the app refuses a second message with an
id it already has, so a retry can never text anyone twice, and `GET /message/{id}` tells
whether an ambiguous send went through.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import phonenumbers

from antirelou.encoding import segment
from antirelou.providers.base import (
    DeliveryState,
    InboundSms,
    OutgoingSms,
    SendError,
    SendResult,
    StatusUpdate,
)
from antirelou.providers.common import (
    MAX_NUMBER,
    ProviderClient,
    fresh,
    same_text,
)
from antirelou.providers.errors import MalformedRequest
from antirelou.providers.wire import Answer

PROVIDER = "android"
RECEIVED = "sms:received"
STATUS_EVENTS = {
    "sms:sent": DeliveryState.SENT,
    "sms:delivered": DeliveryState.DELIVERED,
    "sms:failed": DeliveryState.FAILED,
}
# Event ids are nanoids (21 characters); our own message ids are "antirelou-<n>-<hex>".
_EVENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MESSAGE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_HEX = re.compile(r"[0-9a-fA-F]{64}")
# A reply still queued on the phone after a day is pointless: the app drops it then.
REPLY_TTL_SECONDS = 24 * 3600


# --- signatures -------------------------------------------------------------------------


def compute_signature(raw_body: bytes, timestamp: str, signing_key: str) -> str:
    """hex(HMAC-SHA256(key, raw body + timestamp)), over the body exactly as received."""
    message = raw_body + timestamp.encode("utf-8")
    return hmac.new(signing_key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def refusal(
    raw_body: bytes,
    signature: str,
    timestamp: str,
    signing_key: str,
    now: datetime,
    max_age: timedelta,
) -> str | None:
    """Why this webhook must be refused (403), or None when it is signed and fresh."""
    if not signing_key or not _HEX.fullmatch(signature.strip()):
        return "missing or invalid X-Signature"
    expected = compute_signature(raw_body, timestamp.strip(), signing_key)
    if not same_text(expected, signature.strip().lower()):
        return "missing or invalid X-Signature"
    if not fresh(timestamp, now, max_age):
        return "stale or missing X-Timestamp"
    return None


# --- webhooks ---------------------------------------------------------------------------


def event_of(event: Mapping[str, Any]) -> str:
    """The event's kind ("sms:received", ...), or MalformedRequest."""
    kind = event.get("event")
    if not isinstance(kind, str) or not kind.strip():
        raise MalformedRequest("missing or empty field event")
    return kind.strip()


def _payload(event: Mapping[str, Any]) -> Mapping[str, Any]:
    payload = event.get("payload")
    if not isinstance(payload, dict):
        raise MalformedRequest("missing or malformed field payload (an object is expected)")
    return payload


def _text(mapping: Mapping[str, Any], *names: str) -> str | None:
    """The first of `names` holding a non-blank string."""
    for name in names:
        value = mapping.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _id(mapping: Mapping[str, Any], name: str, pattern: re.Pattern[str], where: str) -> str:
    value = _text(mapping, name)
    if value is None or not pattern.fullmatch(value):
        raise MalformedRequest(f"missing or malformed field {where}")
    return value


def _region(number: str | None) -> str | None:
    """The country of a line's E.164 number: national senders are read in it."""
    if not number or not number.startswith("+"):
        return None
    try:
        code = phonenumbers.parse(number, None).country_code
    except phonenumbers.NumberParseException:
        return None
    if code is None:
        return None
    region: str | None = phonenumbers.region_code_for_country_code(code)
    return None if region in (None, "ZZ") else region


def normalise(number: str, region: str | None) -> str:
    """A number as the phone reported it, in E.164 when that is certain.

    Phones report senders internationally ("+33612345678") or nationally ("0612345678");
    the national form is read in the line's country. Anything else is kept as given.
    """
    text = number.strip()
    if text.startswith("+") or region is None:
        return text
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return text
    if not phonenumbers.is_valid_number(parsed):
        return text
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def flatten(event: Mapping[str, Any]) -> dict[str, str]:
    """Every field as text ("payload.message": ...), for the evidence kept with a message."""
    flat: dict[str, str] = {}
    for key, value in event.items():
        if isinstance(value, dict):
            flat |= {f"{key}.{k}": _scalar(v) for k, v in value.items()}
        else:
            flat[key] = _scalar(value)
    return flat


def _scalar(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: str | None, field: str) -> str:
    if value is None:
        raise MalformedRequest(f"missing or empty field {field}")
    if len(value) > MAX_NUMBER:
        raise MalformedRequest(f"{field} is too long to be a phone number")
    return value


def parse_inbound(event: Mapping[str, Any], default_recipient: str | None = None) -> InboundSms:
    """An `sms:received` event as an `InboundSms`, deduplicated on the event's top-level id.

    `payload.messageId` is derived from the content and is NOT unique: two identical texts
    would share it. Older app versions give the sender as `phoneNumber` and no recipient:
    the line this phone serves (`default_recipient`) stands in for it.
    """
    payload = _payload(event)
    text = payload.get("message")
    if not isinstance(text, str):
        raise MalformedRequest("missing field payload.message")
    recipient = _number(
        _text(payload, "recipient") or default_recipient, "payload.recipient (or one line)"
    )
    region = _region(recipient)
    sender = _number(_text(payload, "sender", "phoneNumber"), "payload.sender")
    return InboundSms(
        provider=PROVIDER,
        provider_id=_id(event, "id", _EVENT_ID, "id"),
        sender=normalise(sender, region),
        recipient=normalise(recipient, region),
        body=text,
        raw=flatten(event),
    )


def parse_status(event: Mapping[str, Any]) -> StatusUpdate:
    """An `sms:sent` / `sms:delivered` / `sms:failed` event about one of our replies."""
    state = STATUS_EVENTS.get(event_of(event))
    if state is None:
        raise MalformedRequest(f"event {event_of(event)[:40]!r} is not a status event")
    payload = _payload(event)
    recipient = _text(payload, "phoneNumber", "recipient")
    return StatusUpdate(
        provider=PROVIDER,
        provider_message_id=_id(payload, "messageId", _MESSAGE_ID, "payload.messageId"),
        state=state,
        error_code="failed" if state is DeliveryState.FAILED else None,
        recipient=recipient[:MAX_NUMBER] if recipient else None,
    )


# --- the app's API ------------------------------------------------------------------------


def gateway_id(sms: OutgoingSms) -> str:
    """Our message id for a reply: stable across retries, so the app refuses a second copy.

    The recipient's digest guards against a reset database reusing outbox ids: the phone
    would otherwise take a new reply for one it already sent (409) and never send it.
    """
    digest = hashlib.sha256(sms.recipient.encode("utf-8")).hexdigest()[:8]
    return f"antirelou-{sms.reference}-{digest}"


class AndroidSender:
    """Sends replies through the app's API and classifies every failure.

    The message id is ours (`gateway_id`): a 409 ("already have it") means an earlier try
    went through, and `find_sent` can ask the phone about any reply by that id.
    """

    name: str = PROVIDER

    def __init__(
        self,
        api_url: str,
        username: str,
        password: str,
        timeout: float = 15.0,
        price_per_segment: float = 0.0,
    ) -> None:
        if not api_url or not username or not password:
            raise ValueError("the Android gateway needs its API URL, username and password")
        self._base = f"{api_url.rstrip('/')}/message"
        self._price_per_segment = price_per_segment
        self._http = ProviderClient(
            "the Android gateway",
            api_url,
            secrets=[password],
            timeout=timeout,
            basic_auth=(username, password),
        )

    def __repr__(self) -> str:
        return f"AndroidSender(url={self._base!r})"

    def _result(self, sms: OutgoingSms) -> SendResult:
        """What a reply costs on the SIM plan (usually nothing), in our own currency."""
        price = segment(sms.body).segments * self._price_per_segment
        return SendResult(gateway_id(sms), price)

    def send(self, sms: OutgoingSms) -> SendResult:
        """POST one message with our id. Raises SendError, classified for the worker."""
        payload = {
            "id": gateway_id(sms),
            "textMessage": {"text": sms.body},
            "phoneNumbers": [sms.recipient],
            "withDeliveryReport": True,
            "ttl": REPLY_TTL_SECONDS,
        }
        answer = self._http.post_json("/message", payload)
        if answer.is_success or answer.status == 409:
            return self._result(sms)  # 409: the phone already has this id from a lost try
        raise self._error(answer)

    def _error(self, answer: Answer) -> SendError:
        status = answer.status
        detail = self._http.detail(answer.json_object().get("message"))
        if status == 429:
            return self._http.throttled(answer, detail)
        if status >= 500:  # older apps answer 500 to a duplicate id: find_sent will tell
            return self._http.maybe_sent(status, detail)
        if status in (401, 403):
            return self._http.refused_credentials(status, detail)
        return SendError(
            f"the Android gateway refused the message (HTTP {status}){detail}",
            transient=False,
            code=str(status),
        )

    def find_sent(self, sms: OutgoingSms, since: datetime) -> SendResult | None:
        """Ask the phone for the reply by our id: 200 it has it, 404 it never got it."""
        answer = self._http.lookup(f"/message/{quote(gateway_id(sms), safe='')}")
        if answer.status == 200:
            return self._result(sms)
        if answer.status == 404:
            return None
        raise self._http.lookup_error(f"HTTP {answer.status}")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()
