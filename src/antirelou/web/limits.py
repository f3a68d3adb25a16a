"""Guards in front of every route: request body size and time, and per-address rate limits.

Both are pure ASGI middleware (cheap on the webhook path).

- BodyGuard: a body declared larger than `[web] max_body_bytes` is refused with 413 before
  a byte of it is read; a chunked body is counted as it arrives and refused once over the
  limit; a body that takes longer than `[web] body_timeout` seconds to arrive gets 408.
  The webhook readers (requests.read_body) apply the same limit again; this covers every
  other route (dashboard forms, the JSON API, public pages) too.
- RateLimit: token buckets per client address, in this process's memory, for the public
  pages (/why, /counter) and login attempts (POST /login). A client over its budget gets
  429 with Retry-After. With several web processes each keeps its own buckets, so a client
  may get up to N times the budget; the login's own database-backed limit on failures
  (ratelimit.py) holds across processes. Behind a reverse proxy the address is the one
  the proxy passes in X-Forwarded-For (from `[web] forwarded_allow_ips` only).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from dataclasses import dataclass, field

from fastapi import FastAPI, HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from antirelou.settings import WebSettings

MAX_CLIENTS = 100_000  # buckets kept per limit; past it, full ones are forgotten


class BodyRefused(HTTPException):
    """Raised from `receive` while an endpoint reads the body; rendered as an HTTP error
    by the app's exception middleware, or by BodyGuard if it gets that far."""


async def _send_error(
    send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]]
) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


class BodyGuard:
    def __init__(self, app: ASGIApp, limit: int, timeout: float) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        chunked = _header(scope, b"transfer-encoding") is not None
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _send_error(send, 413, f"body larger than {self.limit} bytes", [])
            return
        if not chunked and declared in (None, b"0"):
            await self.app(scope, receive, send)  # no body: nothing to guard
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, self._receiver(receive), tracked_send)
        except BodyRefused as refused:
            if not started:
                await _send_error(send, refused.status_code, str(refused.detail), [])

    def _receiver(self, receive: Receive) -> Receive:
        deadline = asyncio.get_running_loop().time() + self.timeout
        received = 0
        finished = False

        async def guarded() -> Message:
            nonlocal received, finished
            if finished:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                finished = True
                raise BodyRefused(408, "the request body took too long to arrive") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    finished = True
                    raise BodyRefused(413, f"body larger than {self.limit} bytes")
                finished = not message.get("more_body", False)
            else:
                finished = True
            return message

        return guarded


@dataclass
class Buckets:
    """Token buckets per key: `burst` requests at once, then `per_minute` per minute."""

    per_minute: float
    burst: int
    tokens: dict[str, tuple[float, float]] = field(default_factory=dict)

    def wait(self, key: str, now: float) -> float:
        """0 if a request may go now (and take its token), else the seconds to wait."""
        rate = self.per_minute / 60
        left, at = self.tokens.get(key, (float(self.burst), now))
        left = min(float(self.burst), left + (now - at) * rate)
        if left >= 1:
            self.tokens[key] = (left - 1, now)
            if len(self.tokens) > MAX_CLIENTS:
                self._forget_full(now)
            return 0.0
        self.tokens[key] = (left, now)
        return (1 - left) / rate

    def _forget_full(self, now: float) -> None:
        rate = self.per_minute / 60
        self.tokens = {
            key: (left, at)
            for key, (left, at) in self.tokens.items()
            if left + (now - at) * rate < self.burst
        }
        if len(self.tokens) > MAX_CLIENTS:  # a flood from very many addresses: start afresh
            self.tokens.clear()


def _is_public_page(path: str) -> bool:
    return path in ("/why", "/counter") or path.startswith(("/why/", "/counter/"))


class RateLimit:
    def __init__(self, app: ASGIApp, public: Buckets | None, login: Buckets | None) -> None:
        self.app = app
        self.public = public
        self.login = login

    def _buckets(self, scope: Scope) -> Buckets | None:
        path = scope.get("path", "")
        if _is_public_page(path):
            return self.public
        if path == "/login" and scope.get("method") == "POST":
            return self.login
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        buckets = self._buckets(scope) if scope["type"] == "http" else None
        if buckets is not None:
            client = scope.get("client")
            wait = buckets.wait(client[0] if client else "unknown", time.monotonic())
            if wait > 0:
                retry = str(max(1, math.ceil(wait))).encode()
                extra = [(b"retry-after", retry), (b"cache-control", b"no-store")]
                await _send_error(send, 429, "too many requests: slow down", extra)
                return
        await self.app(scope, receive, send)


class CheckGate:
    """The password checks this process spends on browsers not trusted for the account.

    A check is argon2 (about 0.1 s of CPU, on purpose). The per-address limits bound what
    one address costs, not what hundreds do: a raid's phones failing logins from their own
    addresses would take the cores the texts need. Past `[web] login_checks_per_minute`
    (all addresses together) such attempts are refused without a check
    (credentials.BUSY); trusted browsers (devices.py) are never counted, so operators
    still get in."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self._buckets = Buckets(per_minute, burst) if per_minute > 0 else None
        self._lock = threading.Lock()  # checks run on the thread pool

    def take(self) -> bool:
        if self._buckets is None:
            return True
        with self._lock:
            return self._buckets.wait("all", time.monotonic()) == 0


def _buckets(per_minute: float, burst: int) -> Buckets | None:
    return Buckets(per_minute, burst) if per_minute > 0 else None


def install(app: FastAPI, web: WebSettings) -> None:
    """Add both guards to the app (create_app calls this)."""
    app.add_middleware(BodyGuard, limit=web.max_body_bytes, timeout=web.body_timeout)
    public = _buckets(web.public_rate_per_minute, web.public_burst)
    login = _buckets(web.login_rate_per_minute, web.login_burst)
    if public or login:
        app.add_middleware(RateLimit, public=public, login=login)  # outermost: first
