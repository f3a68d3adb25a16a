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

One webhook does not go on: a verified inbound text takes its lane (LANES), which stores it
and answers without the framework, whose routing and middleware cost more than parking the
text (queued intake). What the lane cannot take (a text it cannot parse) or fails on (the
database refusing the write) goes on to the route, which answers with its reason or its
error handling: the text is stored once whatever happens (unique provider id).

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
import logging

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from antirelou.clock import Clock, SystemClock
from antirelou.providers.errors import MalformedRequest
from antirelou.settings import Settings
from antirelou.web import android_hooks, plivo_hooks, twilio_hooks, vonage_hooks
from antirelou.web.refusals import refused
from antirelou.web.signed import VERIFIED, Answer, Lane, Seen, Signed
from antirelou.web.state import AppState

log = logging.getLogger(__name__)

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


# By (method, path): Vonage calls with GET or POST, as set in its dashboard.
CHECKS: dict[tuple[str, str], Signed] = {
    ("POST", "/webhooks/twilio/sms"): twilio_hooks.SIGNED,
    ("POST", "/webhooks/twilio/status"): twilio_hooks.SIGNED,
    ("POST", "/webhooks/twilio/voice"): twilio_hooks.SIGNED,
    ("POST", "/webhooks/plivo/sms"): plivo_hooks.SIGNED,
    ("POST", "/webhooks/plivo/status"): plivo_hooks.SIGNED,
    ("POST", "/webhooks/android/sms"): android_hooks.SIGNED,
    ("POST", "/webhooks/android/status"): android_hooks.SIGNED,
    **{
        (method, path): vonage_hooks.SIGNED
        for method in ("GET", "POST")
        for path in ("/webhooks/vonage/inbound", "/webhooks/vonage/status")
    },
}


# By (method, path): the webhooks the gate handles itself once verified.
LANES: dict[tuple[str, str], Lane] = {
    ("POST", "/webhooks/twilio/sms"): twilio_hooks.take_sms,
    ("POST", "/webhooks/plivo/sms"): plivo_hooks.take_sms,
}


@functools.lru_cache(maxsize=16)
def _answer(answer: Answer) -> tuple[Message, Message]:
    headers = [(b"content-length", str(len(answer.body)).encode())]
    if answer.media_type is not None:
        headers.append((b"content-type", f"{answer.media_type}; charset=utf-8".encode()))
    start = {"type": "http.response.start", "status": answer.status, "headers": headers}
    return start, {"type": "http.response.body", "body": answer.body}


class SignatureGate:
    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        clock: Clock | None = None,
        state: AppState | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.clock = clock or SystemClock()
        self.state = state  # for the lanes; None: every verified request goes on to the app
        self.limit = settings.web.max_body_bytes
        self.timeout = settings.web.body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        signed = _signed_for(scope)
        query = _query(scope) if signed is not None else None
        if signed is None or query is None:
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
        seen = Seen(method, scope["path"], query, headers, body)
        try:
            checked = signed.check(self.settings, self.clock.now(), seen)
        except HTTPException:  # cannot be decoded: the route refuses it with its reason
            await self.app(scope, replayed, send)
            return
        if checked.forged is not None:
            refused(signed.provider, checked.forged.reason)
            start, answer = _forbidden(checked.forged.detail)
            await send(start)
            await send(answer)
            return
        lane = LANES.get((method, scope["path"]))
        if lane is not None and await self._take(lane, checked.payload, send):
            return
        scope[VERIFIED] = checked.payload
        await self.app(scope, replayed, send)

    async def _take(self, lane: Lane, payload: object, send: Send) -> bool:
        """Whether the lane took the request and answered it."""
        if self.state is None:
            return False
        try:
            answer = await lane(self.state, payload)
        except MalformedRequest:  # the route refuses it, with its reason
            return False
        except Exception as exc:  # the app takes it, with its own error handling
            log.warning("a verified webhook goes on to the app after: %s", exc)
            return False
        start, body = _answer(answer)
        await send(start)
        await send(body)
        return True


def _signed_for(scope: Scope) -> Signed | None:
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
