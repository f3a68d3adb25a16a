"""Twilio adapter: webhook signatures, webhook parsing and sending through the REST API.

Everything Twilio-specific stays here so that the core only sees the types of `base`:
a parsed `InboundSms` or `StatusUpdate`, and a `SendError` that already says whether a
retry is safe and whether Twilio may have accepted the message anyway.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

from antirelou.providers.base import (
    DeliveryState,
    InboundSms,
    OutgoingSms,
    SendError,
    SendResult,
    StatusUpdate,
)
from antirelou.providers.common import (
    ProviderClient,
    as_utc,
    billed_parts,
    optional,
    positive_price,
)
from antirelou.providers.errors import MalformedRequest
from antirelou.providers.wire import Answer

PROVIDER = "twilio"

Params = Mapping[str, str] | Sequence[tuple[str, str]]

# Twilio message sids: SM (SMS) or MM (MMS) followed by 32 hex digits.
_MESSAGE_SID = re.compile(r"(?:SM|MM)[0-9a-fA-F]{32}")
# Twilio allows at most 10 media per message; three digits is already generous.
_NUM_MEDIA = re.compile(r"[0-9]{1,3}")
_DEFAULT_PORTS = {"https": 443, "http": 80}
_OPTED_OUT = "21610"
# The 'To' number is not a valid phone number; is not a mobile number (a landline): about
# the man who texted, not about us (errors such as 21408, a region our account may not text,
# are ours).
_RECIPIENT_FAULTS = frozenset({"21211", "21614"})
_THROTTLED = "20429"
_STATES = {
    "queued": DeliveryState.QUEUED,
    "accepted": DeliveryState.QUEUED,
    "scheduled": DeliveryState.QUEUED,
    "sending": DeliveryState.QUEUED,
    "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.DELIVERED,  # WhatsApp/RCS: read implies delivered
    "undelivered": DeliveryState.UNDELIVERED,
    "failed": DeliveryState.FAILED,
    "canceled": DeliveryState.FAILED,  # a scheduled message that will never leave
}
# Twilio's timestamps have one-second resolution and our clock may drift a little from theirs.
_CLOCK_SLACK = timedelta(seconds=5)


# --- signatures -------------------------------------------------------------------------


def _pairs(params: Params) -> Iterable[tuple[str, str]]:
    if isinstance(params, Mapping):
        return params.items()
    return params


def compute_signature(url: str, params: Params, auth_token: str) -> str:
    """X-Twilio-Signature for `url` and the decoded POST parameters.

    Twilio signs the URL followed by every parameter name+value sorted by name. Repeated
    names contribute their distinct values in sorted order, as twilio-python does, so that
    a form with repeated keys validates the same way it does in the official library.
    Empty values are part of the signed string: never drop blank parameters before this.
    """
    return _sign(url, _signed_params(params), auth_token)


def _signed_params(params: Params) -> str:
    # Sorting the distinct (name, value) pairs orders by name, then a repeated name's
    # distinct values in order: what twilio-python signs.
    return "".join(name + value for name, value in sorted(set(_pairs(params))))


def _sign(url: str, signed_params: str, auth_token: str) -> str:
    key, message = auth_token.encode("utf-8"), (url + signed_params).encode("utf-8")
    return base64.b64encode(hmac.digest(key, message, "sha1")).decode("ascii")


@functools.lru_cache(maxsize=256)  # every webhook of a path has the same URL
def _url_variants(url: str) -> tuple[str, ...]:
    """The URL as given, plus the same URL with its default port added or removed.

    Twilio is not consistent about signing with or without the default port (behind a
    proxy we may also rebuild the URL differently), so twilio-python tries both. Only the
    scheme's default port is toggled: a non-default port is always part of what Twilio
    calls, so dropping it would only widen what a signature vouches for.
    """
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    if default is None or not parts.hostname:
        return (url,)
    try:
        port = parts.port
    except ValueError:  # a malformed port: only the URL as given can match
        return (url,)
    suffix = f":{default}"
    if port is None:
        return (url, urlunsplit(parts._replace(netloc=parts.netloc + suffix)))
    if port == default and parts.netloc.endswith(suffix):
        return (url, urlunsplit(parts._replace(netloc=parts.netloc[: -len(suffix)])))
    return (url,)


def _body_hash_matches(url: str, raw_body: bytes | None) -> bool:
    """For JSON webhooks Twilio signs the URL only and vouches for the body via bodySHA256."""
    values = parse_qs(urlsplit(url).query, keep_blank_values=True).get("bodySHA256", [])
    if raw_body is None or len(values) != 1:
        return False
    actual = hashlib.sha256(raw_body).hexdigest()
    return hmac.compare_digest(actual.encode("ascii"), values[0].lower().encode("utf-8"))


@functools.lru_cache(maxsize=256)
def _has_body_hash(url: str) -> bool:
    return "bodySHA256" in parse_qs(urlsplit(url).query, keep_blank_values=True)


def validate_signature(
    url: str,
    params: Params,
    signature: str,
    auth_token: str,
    raw_body: bytes | None = None,
) -> bool:
    """Whether `signature` (the X-Twilio-Signature header) vouches for this request.

    `url` must be the full URL Twilio called, query string included. For form webhooks
    `params` are the decoded POST parameters. When the URL carries `bodySHA256` (JSON
    webhooks), `params` are ignored and `raw_body` is required: without it the body could
    be swapped under a valid URL signature, so the request is refused.
    Comparisons are constant-time; every URL variant is checked so timing reveals nothing.
    """
    if not signature or not auth_token:
        return False
    if _has_body_hash(url):
        if not _body_hash_matches(url, raw_body):
            return False
        params = ()
    expected = signature.encode("utf-8")
    signed_params = _signed_params(params)
    valid = False
    for candidate in _url_variants(url):
        computed = _sign(candidate, signed_params, auth_token).encode("ascii")
        valid = hmac.compare_digest(computed, expected) or valid
    return valid


# --- webhook parsing --------------------------------------------------------------------


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or not value.strip():
        raise MalformedRequest(f"missing or empty parameter {name}")
    return value


def _message_sid(params: Mapping[str, str]) -> str:
    """The dedup key must look like a real Twilio sid: anything else is not from Twilio."""
    sid = _required(params, "MessageSid")
    if not _MESSAGE_SID.fullmatch(sid):
        raise MalformedRequest(
            f"MessageSid {sid[:40]!r} is not a Twilio message sid (SM or MM + 32 hex digits)"
        )
    return sid


def _num_media(params: Mapping[str, str]) -> int:
    """NumMedia as an int; absent means a plain SMS. ASCII digits only (int() takes others)."""
    value = params.get("NumMedia")
    if value is None or value == "":
        return 0
    if not _NUM_MEDIA.fullmatch(value):
        raise MalformedRequest(f"NumMedia {value[:20]!r} is not a small non-negative integer")
    return int(value)


def parse_inbound(params: Mapping[str, str]) -> InboundSms:
    """An inbound SMS/MMS webhook's decoded form parameters as an `InboundSms`.

    The body may be empty (an MMS with only pictures). Raises MalformedRequest with a reason
    when a required parameter is missing or does not look like Twilio's.
    """
    return InboundSms(
        provider=PROVIDER,
        provider_id=_message_sid(params),
        sender=_required(params, "From"),
        recipient=_required(params, "To"),
        body=params.get("Body", ""),
        raw=dict(params),
        num_media=_num_media(params),
        parts=billed_parts(params, "NumSegments"),
    )


def _state(params: Mapping[str, str]) -> DeliveryState:
    status = _required(params, "MessageStatus")
    state = _STATES.get(status.strip().lower())
    if state is None:
        raise MalformedRequest(f"unknown MessageStatus {status[:40]!r}")
    return state


def _unit(value: object) -> str | None:
    """Twilio's price unit ("USD", "EUR"): a price is only used in the currency we count in."""
    return value.strip().upper() if isinstance(value, str) and value.strip() else None


def parse_status(params: Mapping[str, str]) -> StatusUpdate:
    """A status callback's decoded form parameters as a `StatusUpdate`.

    Error 21610 means the recipient sent STOP: it is surfaced as `opted_out` so the core
    never writes to them again. Raises MalformedRequest on a missing sid or unknown status.
    """
    error_code = optional(params, "ErrorCode")
    return StatusUpdate(
        provider=PROVIDER,
        provider_message_id=_message_sid(params),
        state=_state(params),
        error_code=error_code,
        recipient=optional(params, "To"),
        price=positive_price(optional(params, "Price")),
        currency=_unit(optional(params, "PriceUnit")),
        opted_out=error_code == _OPTED_OUT,
    )


# --- REST API ---------------------------------------------------------------------------


def _error_code(payload: Mapping[str, object]) -> str | None:
    code = payload.get("code")
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return str(code)
    if isinstance(code, str) and code.strip():
        return code.strip()
    return None


def _parse_date(value: object) -> datetime | None:
    """Twilio's RFC 2822 dates ("Mon, 30 Oct 2017 15:03:12 +0000"), or None if unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return as_utc(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        return None


def _same_message(message: Mapping[str, object], sms: OutgoingSms, earliest: datetime) -> bool:
    sid = message.get("sid")
    if not isinstance(sid, str) or not sid:
        return False
    wire = (message.get("to"), message.get("from"), message.get("body"))
    if wire != (sms.recipient, sms.sender, sms.body):
        return False
    created = _parse_date(message.get("date_created"))
    return created is not None and created >= earliest


class TwilioSender:
    """Sends replies through Twilio's Messages API and classifies every failure.

    The classification is what keeps the service at-most-once: `maybe_sent` is set whenever
    Twilio may have accepted the message (timeouts after the request left, 5xx, a 2xx we
    could not read), so the worker calls `find_sent` before trying again.
    """

    name: str = PROVIDER

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_base_url: str = "https://api.twilio.com",
        timeout: float = 10.0,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("Twilio needs an account SID and an auth token")
        self._account_sid = account_sid
        account = quote(account_sid, safe="")
        self._messages_path = f"/2010-04-01/Accounts/{account}/Messages.json"
        self.messages_url = api_base_url.rstrip("/") + self._messages_path
        self._http = ProviderClient(
            "Twilio",
            api_base_url,
            secrets=[auth_token],
            timeout=timeout,
            basic_auth=(account_sid, auth_token),
        )

    def __repr__(self) -> str:
        return f"TwilioSender(account_sid={self._account_sid!r}, url={self.messages_url!r})"

    def _detail(self, payload: Mapping[str, object]) -> str:
        return self._http.detail(payload.get("message", payload.get("error")))

    def send(self, sms: OutgoingSms) -> SendResult:
        """POST one message. Raises SendError, classified for the worker's retry logic."""
        form = {"To": sms.recipient, "From": sms.sender, "Body": sms.body}
        if sms.status_callback:
            form["StatusCallback"] = sms.status_callback
        return self._send_result(self._http.post_form(self._messages_path, form))

    def _send_result(self, answer: Answer) -> SendResult:
        payload = answer.json_object()
        if answer.is_success:
            sid = payload.get("sid")
            if isinstance(sid, str) and sid:
                return SendResult(
                    provider_message_id=sid,
                    price=positive_price(payload.get("price")),
                    currency=_unit(payload.get("price_unit")),
                )
            raise self._http.maybe_sent(answer.status, ": no message sid in the answer")
        raise self._http_error(answer, payload)

    def _http_error(self, answer: Answer, payload: Mapping[str, object]) -> SendError:
        status = answer.status
        code = _error_code(payload)
        detail = self._detail(payload)
        if status == 429 or code == _THROTTLED:
            return self._http.throttled(answer, detail, code or _THROTTLED)
        if status >= 500 or status < 400:
            return self._http.maybe_sent(status, detail, code)
        if code == _OPTED_OUT:
            return SendError(
                f"the recipient opted out (Twilio {_OPTED_OUT}){detail}; never send to them again",
                transient=False,
                code=_OPTED_OUT,
                opted_out=True,
            )
        if status in (401, 403):
            return self._http.refused_credentials(status, detail, code)
        return SendError(
            f"Twilio refused the message (HTTP {status}, code {code or status}){detail}",
            transient=False,
            code=code or str(status),
            recipient_fault=code in _RECIPIENT_FAULTS,
        )

    def find_sent(self, sms: OutgoingSms, since: datetime) -> SendResult | None:
        """The message Twilio accepted for `sms` since `since`, if any (reconciliation).

        We filter on To and From only: a message Twilio accepted but has not yet sent has no
        date_sent, so a DateSent filter could hide it and cause a duplicate. Twilio lists
        newest first; the instant is checked here, with a few seconds of slack for clock
        skew. If the lookup fails we raise rather than answer None: "not found" would let
        the worker send a duplicate.
        """
        since_utc = as_utc(since)
        query = {
            "To": sms.recipient,
            "From": sms.sender,
            "PageSize": "50",
        }
        earliest = since_utc - _CLOCK_SLACK
        for message in self._list_messages(query):
            if _same_message(message, sms, earliest):
                sid = str(message["sid"])
                return SendResult(
                    provider_message_id=sid,
                    price=positive_price(message.get("price")),
                    currency=_unit(message.get("price_unit")),
                )
        return None

    def _list_messages(self, query: Mapping[str, str]) -> list[dict[str, object]]:
        answer = self._http.lookup(self._messages_path, query)
        payload = answer.json_object()
        if answer.status != 200:
            raise self._http.lookup_error(f"HTTP {answer.status}{self._detail(payload)}")
        messages = payload.get("messages")
        if not isinstance(messages, list):
            raise self._http.lookup_error("the answer has no message list")
        return [message for message in messages if isinstance(message, dict)]

    def close(self) -> None:
        """Close the idle HTTP connections."""
        self._http.close()
