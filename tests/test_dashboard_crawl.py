"""Crawl every route: nothing private answers an anonymous request, and nothing that changes
state accepts a request without the session's CSRF token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from antirelou import models
from antirelou.service import Service
from antirelou.web.dashboard import PUBLIC_PATHS
from tests.dashboard_kit import ADMIN, add_accounts, client_for, dashboard_app
from tests.helpers import LINE

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
PARAMS = {"number": LINE, "lang": "fr"}


@pytest.fixture
def app(service: Service) -> FastAPI:
    add_accounts(service)
    return dashboard_app(service)


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PARAMS.get(m.group(1), "1"), path)


def flat(routes: list[Any], prefix: str = "") -> Iterator[tuple[set[str], str]]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route.methods, prefix + route.path
        elif hasattr(route, "original_router"):  # recent FastAPI includes routers lazily
            yield from flat(route.original_router.routes, prefix + route.include_context.prefix)


def routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    for methods, path in flat(app.routes):
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            yield method, concrete(path)


def is_public(path: str) -> bool:
    return path.startswith(PUBLIC_PATHS) or path.startswith("/webhooks/")


def audit_rows(service: Service) -> int:
    with service.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(models.audit_log)).scalar_one())


def test_the_crawl_sees_the_dashboard(app: FastAPI) -> None:
    paths = {path for _, path in routes(app)}
    assert {"/dashboard", "/api/overview", "/dashboard/lines/+33939000021/pause"} <= paths
    assert len([p for p in paths if not is_public(p)]) >= 40


def test_every_private_route_refuses_an_anonymous_request(app: FastAPI) -> None:
    with client_for(app) as (client, _):
        for method, path in routes(app):
            if is_public(path):
                continue
            response = client.request(method, path, follow_redirects=False)
            if path.startswith("/api/") or path == "/metrics":
                assert response.status_code == 401, (method, path, response.status_code)
            else:
                assert response.status_code == 303, (method, path, response.status_code)
                assert response.headers["location"].startswith("/login")


def test_every_state_change_refuses_a_missing_or_wrong_csrf_token(
    app: FastAPI, service: Service
) -> None:
    writes = [(m, p) for m, p in routes(app) if m in WRITES and not p.startswith("/webhooks/")]
    assert len(writes) >= 30
    with client_for(app, ADMIN) as (client, _csrf):
        before = audit_rows(service)
        for method, path in writes:
            for headers in ({}, {"X-CSRF-Token": "forged"}):
                response = client.request(
                    method, path, headers=headers, data={"csrf": headers.get("X-CSRF-Token", "")}
                )
                assert response.status_code == 403, (method, path, response.status_code)
        assert audit_rows(service) == before  # nothing happened


def test_an_api_token_needs_no_csrf_token(app: FastAPI, service: Service) -> None:
    from antirelou.web.accounts import find_user
    from antirelou.web.sessions import create_token

    with service.engine.begin() as conn:
        user = find_user(conn, ADMIN)
        assert user is not None
        token = create_token(conn, user.id, "test", service.clock.now())
    with client_for(app) as (client, _):
        headers = {"Authorization": f"Bearer {token}"}
        response = client.post(f"/api/lines/{LINE}/pause", json={"reason": "raid"}, headers=headers)
        assert response.status_code == 200
        bad = client.post(f"/api/lines/{LINE}/resume", headers={"Authorization": "Bearer arl_nope"})
        assert bad.status_code == 401
