"""A provider's signature check, shared by the signature gate (gate.py) and the routes.

Each provider's webhooks module declares one `Signed`: its name and a pure check of what was
read of a request (`Seen`). The gate runs it before the framework sees the request and, when
the signature vouches for it, leaves what it verified in the ASGI scope under VERIFIED; the
route's `verified()` takes it from there, or runs the same check itself when the gate let the
request through unread (a body over the limit, or one sent in chunks). One check, one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import HTTPException, Request, Response

from antirelou.settings import Settings
from antirelou.web.refusals import refused
from antirelou.web.requests import read_body

# What the gate verified, in the ASGI scope: only server code writes the scope, so a route
# can trust it and skip a second check. Its shape is the provider's (a form, a body...).
VERIFIED = "antirelou.verified"

# Request headers by lowercase name: Starlette's Headers, or what the gate read.
Headers = Mapping[str, str]


@dataclass(frozen=True)
class Seen:
    """What was read of a request."""

    method: str
    path: str
    query: str
    headers: Headers
    body: bytes

    @property
    def media_type(self) -> str:
        """The media type alone ("application/json"), lowercase, without its parameters."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class Forged:
    reason: str  # for the log
    detail: str  # for the 403


@dataclass(frozen=True)
class Checked:
    """What a check verified (the provider's parameters, or its body) or why to refuse."""

    payload: Any
    forged: Forged | None = None


# Raises HTTPException (4xx) for a request that cannot be decoded at all.
Check = Callable[[Settings, datetime, Seen], Checked]


@dataclass(frozen=True)
class Signed:
    provider: str  # for the log: "Twilio"
    check: Check


@dataclass(frozen=True)
class Answer:
    """A whole response, sent by the gate itself."""

    status: int
    media_type: str | None  # None: no body, no content-type
    body: bytes = b""


# A webhook's lane: the gate hands it what it verified (with the app's AppState) and sends
# its answer, without the framework; what it raises (MalformedRequest for what it cannot
# take) leaves the request to the route, which calls the same function and answers with
# its reason. Only for the hottest webhook: an inbound text.
Lane = Callable[[Any, Any], Awaitable[Answer]]


def answered(answer: Answer) -> Response:
    """The lane's answer as the route returns it."""
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type)


async def verified(request: Request, signed: Signed) -> Any:
    """What the gate verified for this request, or the same check run here; a request
    whose signature does not vouch for it is a 403."""
    payload = request.scope.get(VERIFIED)
    if payload is not None:
        return payload
    service = request.app.state.antirelou.service
    body = await read_body(request, service.settings.web.max_body_bytes)
    url = request.url
    seen = Seen(request.method, url.path, url.query, request.headers, body)
    checked = signed.check(service.settings, service.clock.now(), seen)
    if checked.forged is not None:
        refused(signed.provider, checked.forged.reason)
        raise HTTPException(403, checked.forged.detail)
    return checked.payload
