"""The signature gate: forged Twilio webhooks refused before the framework sees them.

A forged-signature flood is an attack on the service itself: every refused request should
cost as little as a request can. Through FastAPI a refusal costs routing, the dependency
machinery, an exception and its handler, about three times a request that does nothing.
This pure ASGI middleware reads the body of a POST to a Twilio webhook, checks
X-Twilio-Signature with the same functions as the routes, and answers a wrong or missing
one with 403 at once. Anything else goes on to the app unchanged, body replayed: the
routes still check the signature themselves (so the gate is an early exit, not the only
guard), and a body the gate cannot decode reaches them to be refused with its own reason.

The gate is the outermost layer of the app (see app.AntirelouApp), in front of even the
framework's error middleware: that is where the time goes. So it keeps BodyGuard's limits
itself: it only reads bodies of a declared length within `[web] max_body_bytes` (others
go on to BodyGuard, which refuses them), and a body that takes longer than
`[web] body_timeout` seconds to arrive gets 408.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from antirelou.settings import Settings
from antirelou.web.refusals import refused
from antirelou.web.twilio_hooks import FORGED, VERIFIED_FORM, signed_form

TWILIO_PATHS = frozenset(
    {"/webhooks/twilio/sms", "/webhooks/twilio/status", "/webhooks/twilio/voice"}
)
_FORGED_JSON = json.dumps({"detail": FORGED}).encode()
TOO_SLOW = json.dumps({"detail": "the request body took too long to arrive"}).encode()


def _json_headers(body: bytes, *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]


# Whole ASGI messages, built once: a forged flood gets the same answer thousands of times.
_FORGED_START = {
    "type": "http.response.start",
    "status": 403,
    "headers": _json_headers(_FORGED_JSON),
}
_FORGED_BODY = {"type": "http.response.body", "body": _FORGED_JSON}
_TOO_SLOW_START = {
    "type": "http.response.start",
    "status": 408,
    "headers": _json_headers(TOO_SLOW, (b"connection", b"close")),
}
_TOO_SLOW_BODY = {"type": "http.response.body", "body": TOO_SLOW}


class SignatureGate:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.limit = settings.web.max_body_bytes
        self.timeout = settings.web.body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope) if _is_twilio_post(scope) else None
        if headers is None or not _bounded(headers, self.limit):
            await self.app(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.timeout):
                body = await _read_all(receive)
        except TimeoutError:
            await send(_TOO_SLOW_START)
            await send(_TOO_SLOW_BODY)
            return
        if body is None:  # the client went away
            return
        media_type = headers.get(b"content-type", "").split(";")[0].strip().lower()
        signature = headers.get(b"x-twilio-signature", "")
        query = scope.get("query_string", b"").decode("latin-1")
        try:
            pairs = signed_form(self.settings, media_type, signature, scope["path"], query, body)
        except HTTPException:
            pass  # not a form: the route refuses it with the precise reason
        else:
            if pairs is None:
                refused("Twilio", "missing or wrong signature")
                await send(_FORGED_START)
                await send(_FORGED_BODY)
                return
            scope[VERIFIED_FORM] = pairs  # the route need not check it again
        await self.app(scope, _replay(body, receive), send)


def _is_twilio_post(scope: Scope) -> bool:
    return scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in TWILIO_PATHS


def _bounded(headers: dict[bytes, str], limit: int) -> bool:
    """A body of a declared length within the limit (others are BodyGuard's to refuse)."""
    declared = headers.get(b"content-length")
    limited = declared is not None and declared.isdigit() and int(declared) <= limit
    return limited and b"transfer-encoding" not in headers


_WANTED = frozenset(
    {b"content-type", b"content-length", b"transfer-encoding", b"x-twilio-signature"}
)


def _headers(scope: Scope) -> dict[bytes, str]:
    """The first value of each header the gate reads (ASGI names are lowercase)."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _WANTED and name not in found:
            found[name] = value.decode("latin-1")
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
