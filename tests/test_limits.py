"""Guards in front of every route: body size (413), slow bodies (408), and per-address
rate limits on the public pages and login (429 with Retry-After)."""

from __future__ import annotations

import contextlib
import socket
import time
import warnings
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.service import Service
from antirelou.web.app import create_app
from antirelou.web.limits import Buckets
from tests.helpers import make_settings
from tests.live_server import free_port, serving

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

LIMIT = 2048


@pytest.fixture
def guarded_app(database_url: str, clock: VirtualClock) -> Iterator[FastAPI]:
    web = {
        "max_body_bytes": LIMIT,
        "body_timeout": 0.5,
        # One token a minute: the buckets run on real time, and at one a second a slow
        # machine (CI, PostgreSQL) refilled one during the test (a 200 where 429 was due).
        "public_rate_per_minute": 1,
        "public_burst": 3,
        "login_rate_per_minute": 1,
        "login_burst": 2,
    }
    service = Service(make_settings(database_url, web=web), make_engine(database_url), clock)
    service.sync_lines()
    yield create_app(service)
    service.dispose()


def raw_exchange(port: int, head: bytes, then: bytes = b"", pause: float = 0.0) -> bytes:
    """Send `head`, wait `pause`, send `then`; return what the server answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        if pause:
            time.sleep(pause)
        if then:
            with contextlib.suppress(OSError):  # the server may have answered and closed
                sock.sendall(then)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and b'"detail"' in answer:
                break
        return answer


def test_a_declared_oversize_body_is_refused_on_every_route(guarded_app: FastAPI) -> None:
    big = b"x" * (LIMIT + 1)
    with TestClient(guarded_app) as client:
        for path in ("/login", "/webhooks/twilio/sms", "/api/lines/x/pause", "/dashboard/x"):
            response = client.post(path, content=big)
            assert response.status_code == 413, (path, response.status_code)
        odd = client.post("/login", content=b"x", headers={"Content-Length": "nan"})
        assert odd.status_code == 413
        small = client.post("/webhooks/twilio/sms", content=b"a=b", headers={})
        assert small.status_code != 413


def test_a_chunked_body_is_counted_as_it_arrives(guarded_app: FastAPI) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 512

    with TestClient(guarded_app) as client:
        response = client.post(
            "/webhooks/twilio/sms",
            content=chunks(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 413


def test_413_comes_before_the_body_is_sent_and_a_slow_body_gets_408(
    guarded_app: FastAPI,
) -> None:
    port = free_port()
    with serving(guarded_app, port):
        head = (
            b"POST /webhooks/twilio/sms HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
        )
        early = raw_exchange(port, head + b"Content-Length: 1000000000\r\n\r\n")
        assert early.startswith(b"HTTP/1.1 413")

        slow = raw_exchange(port, head + b"Content-Length: 100\r\n\r\nBody=", b"x" * 95, pause=1.2)
        assert slow.startswith(b"HTTP/1.1 408")

        chunked = raw_exchange(
            port,
            head
            + b"Transfer-Encoding: chunked\r\n\r\n"
            + (b"400\r\n" + b"x" * 1024 + b"\r\n") * 3
            + b"0\r\n\r\n",
        )
        assert chunked.startswith(b"HTTP/1.1 413")


def test_public_pages_are_limited_per_address(guarded_app: FastAPI) -> None:
    with TestClient(guarded_app, client=("198.51.100.7", 1234)) as client:
        for _ in range(3):
            assert client.get("/why").status_code == 200
        refused = client.get("/counter/en")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert client.get("/healthz").status_code == 200  # other routes are not limited
    with TestClient(guarded_app, client=("198.51.100.8", 1234)) as neighbour:
        assert neighbour.get("/why").status_code == 200


def test_login_attempts_are_limited_per_address(guarded_app: FastAPI) -> None:
    with TestClient(guarded_app, base_url="https://testserver") as client:
        for _ in range(5):
            assert client.get("/login").status_code == 200  # showing the form is free
        for _ in range(2):
            assert client.post("/login", data={"email": "a@b.c"}).status_code == 403  # no CSRF
        refused = client.post("/login", data={"email": "a@b.c"})
        assert refused.status_code == 429
        assert "retry-after" in refused.headers


def test_buckets_refill_at_their_rate() -> None:
    buckets = Buckets(per_minute=60, burst=2)
    assert buckets.wait("a", 0.0) == 0
    assert buckets.wait("a", 0.0) == 0
    assert buckets.wait("a", 0.0) == pytest.approx(1.0)
    assert buckets.wait("b", 0.0) == 0
    assert buckets.wait("a", 1.0) == 0
    assert buckets.wait("a", 1.5) == pytest.approx(0.5)


def test_limits_can_be_switched_off(database_url: str, clock: VirtualClock) -> None:
    web = {"public_rate_per_minute": 0, "login_rate_per_minute": 0}
    service = Service(make_settings(database_url, web=web), make_engine(database_url), clock)
    try:
        with TestClient(create_app(service)) as client:
            for _ in range(200):
                assert client.get("/why").status_code == 200
    finally:
        service.dispose()
