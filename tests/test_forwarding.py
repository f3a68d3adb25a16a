"""A reverse proxy the server does not believe (web/forwarding.py): its X-Forwarded-For is
ignored, so every visitor would count as the proxy. Admins see it on every dashboard page,
and the log says it once an hour; a proxy that is believed raises nothing."""

from __future__ import annotations

import logging
import time

import httpx
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from antirelou.service import Service
from antirelou.web import forwarding
from antirelou.web.forwarding import Unbelieved
from tests.dashboard_kit import ADMIN, VIEWER, add_accounts, dashboard_app, log_in
from tests.live_server import free_port, serving

PROXY = "10.0.0.5"
VISITOR = "203.0.113.9"


@pytest.fixture
def app(service: Service) -> FastAPI:
    add_accounts(service)
    return dashboard_app(service)


def through_proxy(app: object, proxy: str = PROXY, visitor: str = VISITOR) -> TestClient:
    """A browser behind a reverse proxy at `proxy` that adds X-Forwarded-For."""
    return TestClient(
        app,  # type: ignore[arg-type]
        base_url="https://testserver",
        client=(proxy, 40000),
        headers={"X-Forwarded-For": visitor},
    )


def test_admins_see_a_proxy_whose_header_was_ignored(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=forwarding.__name__):
        with through_proxy(app) as admin:
            log_in(admin, ADMIN)
            page = admin.get("/dashboard").text
        with through_proxy(app) as viewer:
            log_in(viewer, VIEWER)
            hidden = viewer.get("/dashboard").text
    banner = page.split('id="proxy-banner"')[1].split("</div>")[0]
    assert f"<code>{PROXY}</code>" in banner
    assert "forwarded_allow_ips" in banner
    assert 'id="proxy-banner"' not in hidden  # an admin's job
    warnings = [r.getMessage() for r in caplog.records if PROXY in r.getMessage()]
    assert len(warnings) == 1  # once an hour, not once a request
    assert "forwarded_allow_ips" in warnings[0]


def test_a_believed_proxy_raises_nothing(service: Service) -> None:
    """The server's own proxy-header middleware, trusting the proxy, as `serve` runs it."""
    add_accounts(service)
    app = dashboard_app(service)
    believed = ProxyHeadersMiddleware(app, trusted_hosts=PROXY)
    with through_proxy(believed, visitor=f"{VISITOR}:51000") as admin:
        log_in(admin, ADMIN)
        page = admin.get("/dashboard").text
    assert 'id="proxy-banner"' not in page
    assert app.state.antirelou.unbelieved.recent(time.monotonic()) == []


def test_a_page_without_the_header_raises_nothing(app: FastAPI) -> None:
    with TestClient(app, base_url="https://testserver", client=(PROXY, 40000)) as admin:
        log_in(admin, ADMIN)
        assert 'id="proxy-banner"' not in admin.get("/dashboard").text


def test_forged_headers_from_many_addresses_are_not_kept_without_end() -> None:
    seen = Unbelieved()
    for n in range(forwarding.KEEP * 4):
        seen.note(f"198.51.100.{n}", 1000.0)
    seen.note("198.51.100.0", 1001.0)
    recent = seen.recent(1002.0)
    assert len(recent) == forwarding.KEEP
    assert next(s for s in recent if s.address == "198.51.100.0").requests == 2
    assert seen.recent(1001.0 + forwarding.SHOWN_FOR) == []  # a day later, gone


@pytest.mark.parametrize(
    ("header", "hosts"),
    [
        (b"203.0.113.9", ["203.0.113.9"]),
        (b"203.0.113.9:51000, 10.0.0.4", ["203.0.113.9", "10.0.0.4"]),
        (b"[2001:db8::1]:443", ["2001:db8::1"]),
        (b"2001:db8::1", ["2001:db8::1"]),
        (b"", []),
    ],
)
def test_the_headers_hosts_are_read_as_the_server_reads_them(
    header: bytes, hosts: list[str]
) -> None:
    assert forwarding.forwarded_for({"headers": [(b"x-forwarded-for", header)]}) == hosts


def test_over_real_http_only_the_hop_not_believed_is_noted(app: FastAPI) -> None:
    """uvicorn believes 127.0.0.1 (the default); a request from 127.0.0.2, another loopback
    address, is a proxy it does not believe."""
    sightings = app.state.antirelou.unbelieved
    with serving(app, free_port()) as url:
        for source in ("127.0.0.1", "127.0.0.2"):
            transport = httpx.HTTPTransport(local_address=source)
            with httpx.Client(transport=transport, headers={"X-Forwarded-For": VISITOR}) as c:
                assert c.get(f"{url}/healthz").status_code == 200
    assert [s.address for s in sightings.recent(time.monotonic())] == ["127.0.0.2"]
