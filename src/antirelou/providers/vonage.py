"""Vonage (formerly Nexmo) SMS API adapter: signed webhooks, inbound parts, receipts, sending.

Vonage calls our webhooks with GET query parameters, a POST form or a POST JSON object,
depending on the dashboard; all three decode to the same flat parameters here. Long inbound
texts arrive one part per request (Vonage does not reassemble them): `parse_inbound` returns
a `multipart.Part` for those, which `multipart.store_part` keeps until the text is whole.

Replies carry `client-ref` = "antirelou-<outbox id>", and that reference, not Vonage's
per-part message id, is the provider message id we record: every part's delivery receipt
carries it, so receipts of multipart replies all land on their reply, and a reply whose
send answer was lost can still be matched by its receipt (see `VonageSender.find_sent`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from antirelou.encoding import Encoding, segment
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
    bare,
    fresh,
    international,
    matching,
    number,
    optional,
    positive_price,
    required,
    same_text,
)
from antirelou.providers.errors import MalformedRequest
from antirelou.providers.multipart import Part

PROVIDER = "vonage"
SIGNATURE_METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")

# Vonage message ids: 16 hex digits (SMS API) or a UUID; courier's tests use "external1".
_MESSAGE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_CONCAT_REF = re.compile(r"[A-Za-z0-9-]{1,32}")
_SMALL_INT = re.compile(r"[0-9]{1,3}")
# "Throughput Rate Exceeded - please wait [ 250 ] and retry": milliseconds.
_WAIT_MS = re.compile(r"wait \[\s*([0-9]{1,6})\s*\]")

_STATES = {
    "delivered": DeliveryState.DELIVERED,
    "accepted": DeliveryState.SENT,
    "buffered": DeliveryState.SENT,
    "expired": DeliveryState.FAILED,
    "failed": DeliveryState.FAILED,
    "rejected": DeliveryState.FAILED,
}
# Delivery receipt err-code values (Vonage's "Delivery receipt error codes").
DLR_ERRORS = {
    "0": "Delivered",
    "1": "Unknown",
    "2": "Absent Subscriber - Temporary",
    "3": "Absent Subscriber - Permanent",
    "4": "Call Barred by User",
    "5": "Portability Error",
    "6": "Anti-Spam Rejection",
    "7": "Handset Busy",
    "8": "Network Error",
    "9": "Illegal Number",
    "10": "Illegal Message",
    "11": "Unroutable",
    "12": "Destination Unreachable",
    "13": "Subscriber Age Restriction",
    "14": "Number Blocked by Carrier",
    "15": "Prepaid Insufficient Funds",
    "16": "Gateway Quota Exceeded",
    "50": "Entity Filter",
    "51": "Header Filter",
    "52": "Content Filter",
    "53": "Consent Filter",
    "54": "Regulation Error",
    "99": "General Error",
}
# err-code 9: "the user has requested not to receive messages from the sending number".
_DLR_OPTED_OUT = "9"

# /sms/json per-message status codes.
SEND_ERRORS = {
    "1": "Throttled",
    "2": "Missing Parameters",
    "3": "Invalid Parameters",
    "4": "Invalid Credentials",
    "5": "Internal Error",
    "6": "Invalid Message",
    "7": "Number Barred",
    "8": "Partner Account Barred",
    "9": "Partner Quota Violation",
    "10": "Too Many Existing Binds",
    "11": "Account Not Enabled For HTTP",
    "12": "Message Too Long",
    "14": "Invalid Signature",
    "15": "Invalid Sender Address",
    "22": "Invalid Network Code",
    "23": "Invalid Callback URL",
    "29": "Non-Whitelisted Destination",
    "32": "Signature And API Secret Disallowed",
    "33": "Number De-activated",
}
# Refused before anything was queued, and worth trying again later.
_SEND_TRANSIENT = frozenset({"1", "5", "9", "10"})
# "Number barred": the destination is on a block list; never write to it again.
_SEND_BARRED = "7"
_SEND_PATH = "/sms/json"


# --- signatures -------------------------------------------------------------------------


def signed_string(params: Mapping[str, Any]) -> str:
    """'&key=value' for every parameter but `sig`, sorted by key.

    Vonage replaces '&' and '=' inside values by '_' so that the string cannot be re-split
    differently; keys are used as they are.
    """
    return "".join(
        f"&{key}={str(params[key]).replace('&', '_').replace('=', '_')}"
        for key in sorted(params)
        if key != "sig"
    )


def compute_signature(params: Mapping[str, Any], secret: str, method: str) -> str:
    """The lowercase hex `sig` for `params` with the dashboard's signature method.

    "md5hash" (the dashboard's default "MD5 hash") is md5(string + secret); the others are
    HMACs keyed with the secret. The v4 SDK's "md5" is HMAC-MD5, not the plain hash.
    """
    if method not in SIGNATURE_METHODS:
        raise ValueError(f"unknown Vonage signature method {method!r}")
    string = signed_string(params).encode("utf-8")
    if method == "md5hash":
        # Vonage's own (weak) scheme, kept because it is the dashboard's default.
        return hashlib.md5(string + secret.encode("utf-8")).hexdigest()  # noqa: S324
    return hmac.new(secret.encode("utf-8"), string, method).hexdigest()


def signature_valid(params: Mapping[str, str], secret: str, method: str) -> bool:
    """Whether `sig` vouches for every other parameter. Case-insensitive hex, constant time."""
    given = params.get("sig", "")
    if not given or not secret:
        return False
    return same_text(compute_signature(params, secret, method), given.strip().lower())


def refusal(
    params: Mapping[str, str], secret: str, method: str, now: datetime, max_age: timedelta
) -> str | None:
    """Why this webhook must be refused (403), or None when it is signed and fresh.

    The freshness check bounds replays of a captured request; duplicates inside the window
    are caught by the message id anyway.
    """
    if not signature_valid(params, secret, method):
        return "missing or invalid Vonage signature (sig)"
    if not fresh(params.get("timestamp"), now, max_age):
        return "stale or missing Vonage timestamp"
    return None


# --- webhooks ---------------------------------------------------------------------------


def _small_int(params: Mapping[str, str], name: str, low: int, high: int) -> int:
    value = required(params, name).strip()
    if not _SMALL_INT.fullmatch(value) or not low <= int(value) <= high:
        raise MalformedRequest(f"{name} {value[:10]!r} is not a number from {low} to {high}")
    return int(value)


def _is_part(params: Mapping[str, str]) -> bool:
    return params.get("concat", "").strip().lower() == "true" or "concat-ref" in params


def _body(params: Mapping[str, str]) -> str:
    """The text; a binary message (type=binary) has none, only `data` and `udh`."""
    if params.get("type", "").strip().lower() == "binary":
        return ""
    text = params.get("text")
    if text is None:
        raise MalformedRequest("missing parameter text")
    return text


def parse_inbound(params: Mapping[str, str]) -> InboundSms | Part:
    """An inbound webhook as an `InboundSms`, or as one `Part` of a long text.

    Numbers come without '+' and get it back (lines are E.164). Raises MalformedRequest.
    """
    message_id = matching(params, "messageId", _MESSAGE_ID, "a Vonage message id")
    sender = number(params, "msisdn")
    recipient = number(params, "to")
    body = _body(params)
    if not _is_part(params):
        return InboundSms(PROVIDER, message_id, sender, recipient, body, raw=dict(params))
    total = _small_int(params, "concat-total", 1, 255)
    return Part(
        provider=PROVIDER,
        part_id=message_id,
        sender=sender,
        recipient=recipient,
        ref=matching(params, "concat-ref", _CONCAT_REF, "a concatenation reference"),
        number=_small_int(params, "concat-part", 1, total),
        total=total,
        body=body,
        raw=dict(params),
    )


def describe_error(code: str | None) -> str | None:
    """A receipt's err-code in words ("Anti-Spam Rejection"), for logs and the dashboard."""
    if code is None:
        return None
    return DLR_ERRORS.get(code, f"err-code {code}")


def parse_status(params: Mapping[str, str], currency: str | None = None) -> StatusUpdate | None:
    """A delivery receipt as a `StatusUpdate`; None for a status to ignore ("unknown").

    In a receipt `msisdn` is the handset we wrote to and `to` our sender id. err-code 9 is
    Vonage's opt-out: surfaced as `opted_out`. `price` is the part's price, in the account's
    currency, which Vonage does not repeat: the caller says which it is.
    """
    status = required(params, "status").strip().lower()
    state = _STATES.get(status)
    if state is None:
        return None
    message_id = optional(params, "client-ref") or matching(
        params, "messageId", _MESSAGE_ID, "a Vonage message id"
    )
    error_code = optional(params, "err-code")
    if error_code == "0":
        error_code = None
    msisdn = optional(params, "msisdn")
    return StatusUpdate(
        provider=PROVIDER,
        provider_message_id=message_id[:64],
        state=state,
        error_code=error_code[:16] if error_code else None,
        recipient=international(msisdn) if msisdn else None,
        price=positive_price(optional(params, "price")),
        currency=currency,
        opted_out=error_code == _DLR_OPTED_OUT,
    )


# --- sending ------------------------------------------------------------------------------


def client_ref(reference: int) -> str:
    """Our reference for a reply, sent as `client-ref` and echoed in every receipt."""
    return f"antirelou-{reference}"


def message_type(text: str) -> str:
    """ "unicode" when the text needs UCS-2, else "text" (GSM-7): Vonage does not guess."""
    return "unicode" if segment(text).encoding is Encoding.UCS2 else "text"


def _wait(error_text: object) -> float | None:
    match = _WAIT_MS.search(error_text) if isinstance(error_text, str) else None
    return int(match.group(1)) / 1000 if match else None


class VonageSender:
    """Sends replies with `POST /sms/json` and classifies every failure.

    Vonage answers HTTP 200 even for refused messages: the verdict is the `status` of each
    entry of `messages` (one per part of a long text).
    """

    name: str = PROVIDER

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        api_base_url: str = "https://rest.nexmo.com",
        timeout: float = 10.0,
        currency: str | None = None,
    ) -> None:
        if not api_key or not api_secret:
            raise ValueError("Vonage needs an API key and an API secret")
        self._api_key = api_key
        self._api_secret = api_secret
        self._currency = currency
        self._url = f"{api_base_url.rstrip('/')}{_SEND_PATH}"
        self._http = ProviderClient("Vonage", api_base_url, secrets=[api_secret], timeout=timeout)

    def __repr__(self) -> str:
        return f"VonageSender(api_key={self._api_key!r}, url={self._url!r})"

    def _form(self, sms: OutgoingSms) -> dict[str, str]:
        form = {
            "api_key": self._api_key,
            "api_secret": self._api_secret,
            "from": bare(sms.sender),
            "to": bare(sms.recipient),
            "text": sms.body,
            "type": message_type(sms.body),
            "client-ref": client_ref(sms.reference),
        }
        if sms.status_callback:
            form["status-report-req"] = "1"
            form["callback"] = sms.status_callback
        return form

    def send(self, sms: OutgoingSms) -> SendResult:
        """POST one message. Raises SendError, classified for the worker's retry logic."""
        answer = self._http.post_form(_SEND_PATH, self._form(sms))
        if answer.status == 429:
            raise self._http.throttled(answer)
        if answer.status in (401, 403):
            raise self._http.refused_credentials(answer.status)
        if not answer.is_success:
            raise self._http.maybe_sent(answer.status)
        return self._verdict(answer.json_object().get("messages"), sms)

    def _verdict(self, messages: object, sms: OutgoingSms) -> SendResult:
        entries = [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
        if not entries:
            raise self._http.maybe_sent(200, ": no message list in the answer")
        accepted = [m for m in entries if str(m.get("status")) == "0"]
        if accepted:  # even one part out is a send: sending again would repeat it
            prices = [positive_price(m.get("message-price")) for m in accepted]
            known = [price for price in prices if price is not None]
            total = sum(known) if known else None
            return SendResult(client_ref(sms.reference), total, self._currency)
        raise self._refused(entries[0])

    def _refused(self, entry: Mapping[str, object]) -> SendError:
        code = str(entry.get("status", "?"))
        label = SEND_ERRORS.get(code, "Unknown Error")
        detail = self._http.detail(entry.get("error-text"))
        what = f"Vonage refused the message (status {code} {label}){detail}"
        if code in _SEND_TRANSIENT:
            return SendError(
                f"{what}; it was not queued, try again later",
                transient=True,
                maybe_sent=False,
                code=code,
                retry_after=_wait(entry.get("error-text")),
            )
        return SendError(what, transient=False, code=code, opted_out=code == _SEND_BARRED)

    def find_sent(self, sms: OutgoingSms, since: datetime) -> SendResult | None:
        """Vonage's SMS API cannot be asked whether it accepted a message: assume it did.

        This is only called after an ambiguous failure (a lost answer, a 5xx). Sending again
        could text the same person twice; assuming the send keeps the service at-most-once
        and keeps its estimated cost counted. If Vonage did accept it, its delivery receipt
        carries our client-ref, which is the id recorded here, and confirms it; if it did
        not, the reply stays "sent" with no receipt, visible as such. (The Reports API
        could list it, but only minutes later: an absence there proves nothing.)
        """
        return SendResult(client_ref(sms.reference), None, self._currency)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()
