"""What a forged webhook costs the server, per provider, with and without the signature gate.

    .venv/bin/python benchmarks/forged.py [--requests 5000]

In-process, no network: each request is one ASGI call to the real app (`create_app`), as
uvicorn would make it, with a body signed with the wrong secret (a valid shape, so the full
check runs). Two paths per provider:
  * gated: the app as served, the signature gate (web/gate.py) in front;
  * through the app: the same request given to the stack behind the gate, which is what a
    refusal cost before the gate covered that provider (routing, the route, its 403).
Every answer must be 403; the script prints microseconds of CPU per forged request. What
uvicorn itself costs per request (HTTP parsing, the socket) comes on top, the same on both
paths: `benchmarks/load.py` measures that whole, for Twilio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from benchkit import ACCOUNT_SID, LINE, inbound_form
from starlette.types import ASGIApp, Message

from antirelou import migrate
from antirelou.providers import android, plivo, vonage
from antirelou.providers.twilio import compute_signature
from antirelou.service import Service
from antirelou.settings import settings_from_mapping
from antirelou.web.app import create_app

PUBLIC_URL = "https://decoy.example.org"
SECRET = "the-real-secret"  # noqa: S105 - a throwaway secret
WRONG = "not-the-secret"
FORM = b"application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Forged:
    provider: str
    method: str
    path: str
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes


def twilio_request() -> Forged:
    path = "/webhooks/twilio/sms"
    pairs = inbound_form("SM" + "f" * 32, "+33612345678", "Tu me donnes ton vrai numéro ?")
    signature = compute_signature(PUBLIC_URL + path, pairs, WRONG)
    headers = [(b"content-type", FORM), (b"x-twilio-signature", signature.encode())]
    return Forged("Twilio", "POST", path, b"", headers, urlencode(pairs).encode())


def plivo_request() -> Forged:
    path = "/webhooks/plivo/sms"
    params = {"From": "33612345678", "To": LINE.lstrip("+"), "Type": "sms"}
    params |= {"Text": "Tu me donnes ton vrai numéro ?", "MessageUUID": "f" * 36}
    signature = plivo.compute_signature("POST", PUBLIC_URL + path, params, "12345", WRONG)
    headers = [(b"content-type", FORM), (b"x-plivo-signature-v3", signature.encode())]
    headers.append((b"x-plivo-signature-v3-nonce", b"12345"))
    return Forged("Plivo", "POST", path, b"", headers, urlencode(params).encode())


def android_request() -> Forged:
    path = "/webhooks/android/sms"
    payload = {"message": "Tu me donnes ton vrai numéro ?", "phoneNumber": "+33612345678"}
    body = json.dumps({"event": "sms:received", "id": "f" * 21, "payload": payload}).encode()
    stamp = str(int(time.time()))
    signature = android.compute_signature(body, stamp, WRONG)
    headers = [(b"content-type", b"application/json"), (b"x-signature", signature.encode())]
    headers.append((b"x-timestamp", stamp.encode()))
    return Forged("Android gateway", "POST", path, b"", headers, body)


def vonage_request() -> Forged:
    params = {"msisdn": "33612345678", "to": LINE.lstrip("+"), "messageId": "0A0000001234"}
    params |= {"text": "Tu me donnes ton vrai numéro ?", "type": "text"}
    params |= {"timestamp": str(int(time.time()))}
    params["sig"] = vonage.compute_signature(params, WRONG, "sha256")
    query = urlencode(params).encode()
    return Forged("Vonage", "GET", "/webhooks/vonage/inbound", query, [], b"")


REQUESTS: list[Callable[[], Forged]] = [
    twilio_request,
    plivo_request,
    android_request,
    vonage_request,
]


def settings(directory: Path) -> Any:
    return settings_from_mapping(
        {
            "database_url": f"sqlite:///{directory}/forged.db",  # a forged request never writes
            "public_url": PUBLIC_URL,
            "lines": [{"number": LINE, "provider": "sandbox"}],
            "evidence": {"key_path": str(directory / "evidence.key")},
            "twilio": {"account_sid": ACCOUNT_SID, "auth_token": SECRET},
            "plivo": {"auth_id": "MA" + "0" * 18, "auth_token": SECRET},
            "android": {"signing_key": SECRET},
            "vonage": {"signature_secret": SECRET, "signature_method": "sha256"},
        }
    )


async def call(app: ASGIApp, request: Forged) -> int:
    """One ASGI request; returns the response's status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": request.path,
        "raw_path": request.path.encode(),
        "query_string": request.query,
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-length", str(len(request.body)).encode()),
            *request.headers,
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    statuses: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": request.body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


async def per_request(app: ASGIApp, request: Forged, count: int) -> float:
    """Microseconds of CPU per forged request; every one must be refused with 403."""
    for _ in range(min(500, count)):  # warm-up: caches, lazy imports
        await call(app, request)
    started = time.process_time()
    statuses = [await call(app, request) for _ in range(count)]
    elapsed = time.process_time() - started
    if set(statuses) != {403}:
        raise SystemExit(f"{request.provider}: expected only 403, got {sorted(set(statuses))}")
    return elapsed / count * 1e6


async def measure(count: int) -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory(prefix="forged-") as tmp:
        service = Service.from_settings(settings(Path(tmp)))
        migrate.upgrade(service.engine)  # the app reads its settings overrides at start
        app = create_app(service)
        inner = app.build_middleware_stack().app  # type: ignore[attr-defined]

        async def behind(scope: Any, receive: Any, send: Any) -> None:
            """The app without its gate, called as FastAPI calls its middleware stack."""
            scope["app"] = app
            await inner(scope, receive, send)

        gated: ASGIApp = app
        rows = []
        for make in REQUESTS:
            request = make()
            rows.append(
                (
                    request.provider,
                    await per_request(gated, request, count),
                    await per_request(behind, request, count),
                )
            )
        service.dispose()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="per provider and path")
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)  # one refusal line per provider would only add noise
    rows = asyncio.run(measure(args.requests))
    print(f"forged webhooks, {args.requests} per provider and path, CPU per request")
    print(f"{'provider':<16} {'gated µs':>9} {'through the app µs':>19} {'ratio':>6}")
    for provider, gated, behind in rows:
        print(f"{provider:<16} {gated:>9.1f} {behind:>19.1f} {behind / gated:>5.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
