"""The signature gate: forged webhooks refused before the framework sees them.

A forged-signature flood is an attack on the service itself: every refused request should
cost as little as a request can. Through FastAPI a refusal costs routing, the dependency
machinery, an exception and its handler, about three times a request that does nothing.
This pure ASGI middleware reads a webhook to Twilio's, Plivo's, Vonage's or the Android
gateway's paths, checks its signature (and, where the provider dates it, its freshness) with
the same functions as the routes, and answers a wrong or missing one with 403 at once.
Anything else goes on to the app unchanged, body replayed, with what the gate verified left
in the scope so that the route need not check it again; a request the gate cannot decode
reaches the route to be refused with its own reason.

The gate is the outermost layer of the app (see app.AntirelouApp), in front of even the
framework's error middleware: that is where the time goes. So it keeps BodyGuard's limits
itself: it only reads bodies of a declared length within `[web] max_body_bytes` (others
go on to BodyGuard, which refuses them), and a body that takes longer than
`[web] body_timeout` seconds to arrive gets 408.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from antirelou.clock import Clock, SystemClock
from antirelou.settings import Settings
from antirelou.web import android_hooks, plivo_hooks, twilio_hooks, vonage_hooks
from antirelou.web.refusals import refused
from antirelou.web.requests import FormCheck

TOO_SLOW = json.dumps({"detail": "the request body took too long to arrive"}).encode()


def _json_headers(body: bytes, *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]


@functools.lru_cache(maxsize=16)  # a flood gets the same answer thousands of times
def _forbidden(detail: str) -> tuple[Message, Message]:
    """The whole 403 as ASGI messages, built once per detail."""
    body = json.dumps({"detail": detail}).encode()
    start = {"type": "http.response.start", "status": 403, "headers": _json_headers(body)}
    return start, {"type": "http.response.body", "body": body}


_TOO_SLOW_START = {
    "type": "http.response.start",
    "status": 408,
    "headers": _json_headers(TOO_SLOW, (b"connection", b"close")),
}
_TOO_SLOW_BODY = {"type": "http.response.body", "body": TOO_SLOW}


@dataclass(frozen=True)
class Seen:
    """What the gate read of a request."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class Forged:
    provider: str  # for the log
    reason: str  # for the log
    detail: str  # for the 403


# A check's verdict: Forged; (scope key, verified value) for the route; None: the route decides.
Verdict = Forged | tuple[str, Any] | None
Check = Callable[["SignatureGate", Seen], Verdict]


def _form_check(provider: str, check: FormCheck, key: str, forged: str) -> Check:
    refusal = Forged(provider, "missing or wrong signature", forged)

    def checked(gate: SignatureGate, seen: Seen) -> Verdict:
        try:
            pairs = check(
                gate.settings, seen.media_type, seen.headers, seen.path, seen.query, seen.body
            )
        except HTTPException:
            return None  # not a form: the route refuses it with the precise reason
        return refusal if pairs is None else (key, pairs)

    return checked


def _android(gate: SignatureGate, seen: Seen) -> Verdict:
    settings, now = gate.settings, gate.clock.now()
    reason = android_hooks.body_refusal(settings, now, seen.headers, seen.body)
    if reason is not None:
        return Forged("Android gateway", reason, reason)
    return android_hooks.VERIFIED_BODY, seen.body


def _vonage(gate: SignatureGate, seen: Seen) -> Verdict:
    try:
        params, reason = vonage_hooks.signed_params(
            gate.settings, gate.clock.now(), seen.method, seen.media_type, seen.query, seen.body
        )
    except HTTPException:
        return None  # cannot be decoded: the route refuses it with the precise reason
    if reason is not None:
        return Forged("Vonage", reason, reason)
    return vonage_hooks.VERIFIED_PARAMS, params


_twilio = _form_check(
    "Twilio", twilio_hooks.signed_form, twilio_hooks.VERIFIED_FORM, twilio_hooks.FORGED
)
_plivo = _form_check(
    "Plivo", plivo_hooks.signed_form, plivo_hooks.VERIFIED_FORM, plivo_hooks.FORGED
)
# By (method, path): Vonage calls with GET or POST, as set in its dashboard.
CHECKS: dict[tuple[str, str], Check] = {
    ("POST", "/webhooks/twilio/sms"): _twilio,
    ("POST", "/webhooks/twilio/status"): _twilio,
    ("POST", "/webhooks/twilio/voice"): _twilio,
    ("POST", "/webhooks/plivo/sms"): _plivo,
    ("POST", "/webhooks/plivo/status"): _plivo,
    ("POST", "/webhooks/android/sms"): _android,
    ("POST", "/webhooks/android/status"): _android,
    **{
        (method, path): _vonage
        for method in ("GET", "POST")
        for path in ("/webhooks/vonage/inbound", "/webhooks/vonage/status")
    },
}


class SignatureGate:
    def __init__(self, app: ASGIApp, settings: Settings, clock: Clock | None = None) -> None:
        self.app = app
        self.settings = settings
        self.clock = clock or SystemClock()
        self.limit = settings.web.max_body_bytes
        self.timeout = settings.web.body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        check = _check_for(scope)
        query = _query(scope) if check is not None else None
        if check is None or query is None:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        method = scope["method"]
        if method == "GET":  # Vonage: all in the query string, no body to read
            body, replayed = b"", receive
        elif not _bounded(headers, self.limit):
            await self.app(scope, receive, send)
            return
        else:
            try:
                async with asyncio.timeout(self.timeout):
                    read = await _read_all(receive)
            except TimeoutError:
                await send(_TOO_SLOW_START)
                await send(_TOO_SLOW_BODY)
                return
            if read is None:  # the client went away
                return
            body, replayed = read, _replay(read, receive)
        verdict = check(self, Seen(method, scope["path"], query, headers, body))
        if isinstance(verdict, Forged):
            refused(verdict.provider, verdict.reason)
            start, answer = _forbidden(verdict.detail)
            await send(start)
            await send(answer)
            return
        if verdict is not None:
            key, value = verdict
            scope[key] = value  # only server code writes the scope: the route trusts it
        await self.app(scope, replayed, send)


def _check_for(scope: Scope) -> Check | None:
    if scope["type"] != "http":
        return None
    return CHECKS.get((scope["method"], scope["path"]))


def _query(scope: Scope) -> str | None:
    """The query string as the routes see it (UTF-8); None when it is not UTF-8."""
    try:
        return bytes(scope.get("query_string", b"")).decode()
    except UnicodeDecodeError:
        return None  # the app refuses it


def _bounded(headers: dict[str, str], limit: int) -> bool:
    """A body of a declared length within the limit (others are BodyGuard's to refuse)."""
    declared = headers.get("content-length")
    limited = declared is not None and declared.isdigit() and int(declared) <= limit
    return limited and "transfer-encoding" not in headers


_WANTED = {
    name: name.decode()
    for name in (
        b"content-type",
        b"content-length",
        b"transfer-encoding",
        b"x-twilio-signature",
        b"x-plivo-signature-v3",
        b"x-plivo-signature-v3-nonce",
        b"x-signature",
        b"x-timestamp",
    )
}


def _headers(scope: Scope) -> dict[str, str]:
    """The first value of each header the checks read (ASGI names are lowercase)."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = _WANTED.get(name)
        if key is not None and key not in found:
            found[key] = value.decode("latin-1")
    return found


async def _read_all(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that gives the body once, then whatever the client sends next."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
