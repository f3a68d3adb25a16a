"""Plivo adapter: X-Plivo-Signature-V3 webhooks, inbound and status parsing, Message API send.

Plivo reassembles long inbound texts itself (`Units` > 1), so one webhook is one text.
Numbers travel without '+'. Replies go through `POST /v1/Account/{auth_id}/Message/`; a
reply whose answer was lost is looked up in the Message list (MDR) API before any resend.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

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
    bare,
    billed_parts,
    international,
    matching,
    number,
    optional,
    positive_price,
    required,
    same_text,
)
from antirelou.providers.errors import MalformedRequest
from antirelou.providers.wire import Answer

PROVIDER = "plivo"
Params = Mapping[str, str] | Sequence[tuple[str, str]]

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_MEDIA_COUNT = re.compile(r"[0-9]{1,2}")
_STATES = {
    "queued": DeliveryState.QUEUED,
    "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.DELIVERED,
    "undelivered": DeliveryState.UNDELIVERED,
    "failed": DeliveryState.FAILED,
    "rejected": DeliveryState.FAILED,
}
_NO_ERROR = frozenset({"", "0", "000"})
# "Source number blocked by STOP from destination number": the recipient opted out.
OPTED_OUT = "200"
# The list API answers at most 20 records a page; we read this many pages before giving up.
_PAGE = 20
_MAX_PAGES = 5
# Plivo's message times have one-second resolution and our clock may drift a little.
_CLOCK_SLACK = timedelta(seconds=5)


# --- signatures -------------------------------------------------------------------------


def _grouped(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


def _pairs(params: Params) -> list[tuple[str, str]]:
    return list(params.items()) if isinstance(params, Mapping) else list(params)


def _each(grouped: Mapping[str, list[str]]) -> list[tuple[str, str]]:
    """Names in order, and each name's values in order, as Plivo's SDKs sort them."""
    return [(name, value) for name in sorted(grouped) for value in sorted(grouped[name])]


def _sorted_query(grouped: Mapping[str, list[str]]) -> str:
    return "&".join(f"{name}={value}" for name, value in _each(grouped))


def _sorted_params(grouped: Mapping[str, list[str]]) -> str:
    return "".join(f"{name}{value}" for name, value in _each(grouped))


def signed_string(method: str, url: str, params: Params) -> str:
    """What Plivo signs, before '.' + nonce, as its SDKs build it.

    The URL is taken without its query; the query's decoded parameters come back sorted
    ("k=v" joined by "&"). For POST the body parameters follow, sorted, as "kv" with no
    separator, after '?' (and a '.' when there was a query); for GET they join the query.
    """
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    query = _grouped(parse_qsl(parts.query, keep_blank_values=True))
    body = _grouped(_pairs(params))
    if method.upper() == "GET":
        query_string = _sorted_query({**body, **query})
        return base + ("?" + query_string if query_string else "")
    query_string = _sorted_query(query)
    signed = base
    if query_string or body:
        signed += "?" + query_string
    if query_string and body:
        signed += "."
    return signed + _sorted_params(body)


def compute_signature(method: str, url: str, params: Params, nonce: str, auth_token: str) -> str:
    """base64(HMAC-SHA256(auth_token, signed_string + "." + nonce))."""
    message = f"{signed_string(method, url, params)}.{nonce}".encode()
    digest = hmac.new(auth_token.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def validate_signature(
    method: str, url: str, params: Params, header: str, nonce: str, auth_token: str
) -> bool:
    """Whether any of the comma-separated signatures in X-Plivo-Signature-V3 matches.

    Plivo sends several while an auth token is being rotated. Every candidate is compared
    (constant time each), so the position of the match does not show in the timing.
    """
    if not header or not nonce or not auth_token:
        return False
    expected = compute_signature(method, url, params, nonce, auth_token)
    valid = False
    for candidate in header.split(","):
        valid = same_text(expected, candidate.strip()) or valid
    return valid


# --- webhooks ---------------------------------------------------------------------------


def _num_media(params: Mapping[str, str]) -> int:
    value = params.get("MediaCount", "").strip()
    if not value:
        return 0
    if not _MEDIA_COUNT.fullmatch(value):
        raise MalformedRequest(f"MediaCount {value[:10]!r} is not a small non-negative integer")
    return int(value)


def parse_inbound(params: Mapping[str, str]) -> InboundSms:
    """An inbound message webhook as an `InboundSms`; numbers get their '+' back.

    The text may be empty for an MMS with only pictures. Raises MalformedRequest.
    """
    text = params.get("Text")
    if text is None:
        raise MalformedRequest("missing parameter Text")
    return InboundSms(
        provider=PROVIDER,
        provider_id=matching(params, "MessageUUID", _UUID, "a Plivo message UUID"),
        sender=number(params, "From"),
        recipient=number(params, "To"),
        body=text,
        raw=dict(params),
        num_media=_num_media(params),
        parts=billed_parts(params, "Units"),
    )


def _message_uuid(params: Mapping[str, str]) -> str:
    """The reply's id: a long reply's parts carry their first part's UUID as the parent."""
    if optional(params, "ParentMessageUUID"):
        return matching(params, "ParentMessageUUID", _UUID, "a Plivo message UUID")
    return matching(params, "MessageUUID", _UUID, "a Plivo message UUID")


def parse_status(params: Mapping[str, str], currency: str | None = "USD") -> StatusUpdate:
    """A message status callback as a `StatusUpdate`.

    Error 200 means the recipient sent STOP: surfaced as `opted_out`. TotalAmount is in the
    account's currency (US dollars). Raises MalformedRequest on an unknown status.
    """
    status = required(params, "Status").strip().lower()
    state = _STATES.get(status)
    if state is None:
        raise MalformedRequest(f"unknown Status {status[:40]!r}")
    error = params.get("ErrorCode", "").strip()
    error_code = None if error in _NO_ERROR else error[:16]
    recipient = optional(params, "To")
    return StatusUpdate(
        provider=PROVIDER,
        provider_message_id=_message_uuid(params),
        state=state,
        error_code=error_code,
        recipient=international(recipient) if recipient else None,
        price=positive_price(optional(params, "TotalAmount")),
        currency=currency,
        opted_out=error_code == OPTED_OUT,
    )


# --- Message API --------------------------------------------------------------------------


def _message_time(value: object) -> datetime | None:
    """Plivo's "2024-05-01 10:11:12.123456+00:00" (or without a zone: UTC), or None."""
    if not isinstance(value, str):
        return None
    try:
        return as_utc(datetime.fromisoformat(value.strip()))
    except ValueError:
        return None


def _same_message(record: Mapping[str, Any], sms: OutgoingSms, earliest: datetime) -> bool:
    uuid = record.get("message_uuid")
    if not isinstance(uuid, str) or not uuid:
        return False
    if (record.get("to_number"), record.get("from_number")) != (
        bare(sms.recipient),
        bare(sms.sender),
    ):
        return False
    sent_at = _message_time(record.get("message_time"))
    # The query already filtered on time; an unreadable time cannot rule the record out.
    return sent_at is None or sent_at >= earliest


class PlivoSender:
    """Sends replies through Plivo's Message API and classifies every failure."""

    name: str = PROVIDER

    def __init__(
        self,
        auth_id: str,
        auth_token: str,
        api_base_url: str = "https://api.plivo.com",
        timeout: float = 10.0,
    ) -> None:
        if not auth_id or not auth_token:
            raise ValueError("Plivo needs an auth ID and an auth token")
        self._auth_id = auth_id
        self._path = f"/v1/Account/{quote(auth_id, safe='')}/Message/"
        self._url = api_base_url.rstrip("/") + self._path
        self._http = ProviderClient(
            "Plivo",
            api_base_url,
            secrets=[auth_token],
            timeout=timeout,
            basic_auth=(auth_id, auth_token),
        )

    def __repr__(self) -> str:
        return f"PlivoSender(auth_id={self._auth_id!r}, url={self._url!r})"

    def send(self, sms: OutgoingSms) -> SendResult:
        """POST one message. Raises SendError, classified for the worker's retry logic."""
        payload = {"src": bare(sms.sender), "dst": bare(sms.recipient), "text": sms.body}
        if sms.status_callback:
            payload |= {"url": sms.status_callback, "method": "POST"}
        answer = self._http.post_json(self._path, payload)
        body = answer.json_object()
        if answer.is_success:
            return self._accepted(answer.status, body)
        raise self._error(answer, body)

    def _accepted(self, status: int, body: Mapping[str, Any]) -> SendResult:
        uuids = body.get("message_uuid")
        if isinstance(uuids, list) and uuids and isinstance(uuids[0], str) and uuids[0]:
            return SendResult(uuids[0])
        raise self._http.maybe_sent(status, ": no message_uuid in the answer")

    def _error(self, answer: Answer, body: Mapping[str, Any]) -> SendError:
        status = answer.status
        detail = self._http.detail(body.get("error") or body.get("message"))
        if status == 429:
            return self._http.throttled(answer, detail)
        if status >= 500:
            return self._http.maybe_sent(status, detail)
        if status in (401, 403, 404):  # 404: no such account under that auth ID
            return self._http.refused_credentials(status, detail)
        return SendError(
            f"Plivo refused the message (HTTP {status}){detail}",
            transient=False,
            code=str(status),
        )

    def find_sent(self, sms: OutgoingSms, since: datetime) -> SendResult | None:
        """The message Plivo accepted for `sms` since `since`, if any (reconciliation).

        Message detail records carry no text, so a record matches on its numbers and time:
        one reply per sender per window makes that unambiguous. Records are read newest
        first, a few pages at most; if the answer is longer than that, or any page fails,
        this raises rather than answer None, since "not found" would let the worker send a
        second text.
        """
        earliest = as_utc(since) - _CLOCK_SLACK
        query = {
            "message_direction": "outbound",
            "message_time__gte": earliest.strftime("%Y-%m-%d %H:%M:%S"),
            "limit": str(_PAGE),
        }
        for page in range(_MAX_PAGES):
            records, more = self._page({**query, "offset": str(page * _PAGE)})
            for record in records:
                if _same_message(record, sms, earliest):
                    return SendResult(str(record["message_uuid"]))
            if not more:
                return None
        raise self._http.lookup_error(f"more than {_PAGE * _MAX_PAGES} messages to look through")

    def _page(self, query: Mapping[str, str]) -> tuple[list[dict[str, Any]], bool]:
        answer = self._http.lookup(self._path, query)
        body = answer.json_object()
        if answer.status != 200:
            raise self._http.lookup_error(
                f"HTTP {answer.status}{self._http.detail(body.get('error'))}"
            )
        objects = body.get("objects")
        if not isinstance(objects, list):
            raise self._http.lookup_error("the answer has no message list")
        meta = body.get("meta")
        more = isinstance(meta, dict) and bool(meta.get("next"))
        return [record for record in objects if isinstance(record, dict)], more

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()
