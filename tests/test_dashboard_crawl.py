"""Crawl every route: nothing private answers an anonymous request, and nothing that changes
state accepts a request without the session's CSRF token."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from starlette.testclient import TestClient

from antirelou import models
from antirelou.service import Service
from antirelou.web.dashboard import PUBLIC_PATHS
from tests.dashboard_kit import ADMIN, add_accounts, client_for, dashboard_app, log_in
from tests.helpers import LINE

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
PARAMS = {"number": LINE, "lang": "fr"}


@pytest.fixture
def app(service: Service) -> FastAPI:
    add_accounts(service)
    return dashboard_app(service)


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PARAMS.get(m.group(1), "1"), path)


def api_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[APIRoute, str]]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route, prefix + route.path
        elif hasattr(route, "original_router"):  # recent FastAPI includes routers lazily
            yield from api_routes(
                route.original_router.routes, prefix + route.include_context.prefix
            )


def flat(routes: list[Any], prefix: str = "") -> Iterator[tuple[set[str], str]]:
    for route, path in api_routes(routes, prefix):
        yield route.methods, path


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
        token = create_token(conn, user.id, "test", service.clock.now(), None)
    with client_for(app) as (client, _):
        headers = {"Authorization": f"Bearer {token}"}
        response = client.post(f"/api/lines/{LINE}/pause", json={"reason": "raid"}, headers=headers)
        assert response.status_code == 200
        bad = client.post(f"/api/lines/{LINE}/resume", headers={"Authorization": "Bearer arl_nope"})
        assert bad.status_code == 401


# What a confused operator, a broken script or someone with a stolen session may type.
HOSTILE = ("\x00", "é" * 300, "-1", "9" * 40, "1e309", "NaN", "", "<script>", "2017-13-45T99:99")


def form_and_query_names(route: APIRoute) -> tuple[set[str], set[str]]:
    """The form fields (or JSON body) and the query parameters a route reads, its
    dependencies' included."""
    dependants = [route.dependant, *route.dependant.dependencies]
    body = {p.alias for d in dependants for p in d.body_params} - {"csrf"}
    query = {p.alias for d in dependants for p in d.query_params}
    return body, query


def test_no_route_answers_hostile_values_with_a_server_error(app: FastAPI) -> None:
    """Each field of each dashboard and API route, given each hostile value, as an admin
    with a valid CSRF token: a refusal or a result, never a 500 (a NUL breaks PostgreSQL,
    a huge number overflows the ledger, NaN and infinity are floats...)."""
    crashes = []
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        csrf = log_in(client, ADMIN)
        for route, template in api_routes(app.routes):
            path = concrete(template)
            if path.startswith("/webhooks/") or path == "/logout":
                continue
            body, query = form_and_query_names(route)
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                for value in HOSTILE:
                    params = dict.fromkeys(query, value)
                    data = {**dict.fromkeys(body, value), "csrf": csrf}
                    headers = {"X-CSRF-Token": csrf}
                    response = client.request(
                        method, path, params=params, data=data, headers=headers
                    )
                    if response.status_code >= 500:
                        crashes.append((method, path, value[:12], response.status_code))
    assert crashes == []


def json_fields(route: APIRoute) -> list[str]:
    """The fields of the pydantic model a JSON API route takes as its body, if any."""
    for param in route.dependant.body_params:
        model = getattr(param.field_info, "annotation", None)
        if model is not None and hasattr(model, "model_fields"):
            return list(model.model_fields)
    return []


def test_no_api_route_answers_hostile_json_with_a_server_error(
    app: FastAPI, service: Service
) -> None:
    """The JSON API's bodies get the same treatment, with what JSON adds: nulls, lists,
    objects, booleans, and the NaN and Infinity that Python's json writes."""
    from antirelou.web.accounts import find_user
    from antirelou.web.sessions import create_token

    with service.engine.begin() as conn:
        user = find_user(conn, ADMIN)
        assert user is not None
        token = create_token(conn, user.id, "crawl", service.clock.now(), None)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    values: list[object] = [*HOSTILE, 10**40, -(10**30), float("nan"), float("inf")]
    values += [None, [], {}, True]
    routes_with_bodies = 0
    failures = []
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        for route, template in api_routes(app.routes):
            fields = json_fields(route)
            if not template.startswith("/api/") or not fields:
                continue
            routes_with_bodies += 1
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                for value in values:
                    body = json.dumps(dict.fromkeys(fields, value))  # NaN and Infinity too
                    path = concrete(template)
                    response = client.request(method, path, content=body, headers=headers)
                    if response.status_code >= 500:
                        failures.append((method, template, repr(value)[:12]))
    assert routes_with_bodies >= 5, "the crawl found the API's bodies"
    assert failures == []


PATH_VALUES = ("0", "-1", "9" * 30, "1e309", "NaN", "%00", "%C3%A9" * 50, "abc", "+33612345678")
ODD_HEADERS: tuple[dict[str, bytes], ...] = (
    {"Cookie": "__Host-antirelou_session=\xe9\xe9; antirelou_session=\xe9".encode("latin-1")},
    {"Accept-Language": b"*;q=abc, fr;q=2, ;;;"},
    {"Accept-Language": b"x" * 5000},
    {"X-Forwarded-For": b"garbage, ::::, 999.1.1.1"},
    {"Authorization": "Basic \xe9\xe9".encode("latin-1")},
    {"Authorization": b"Bearer " + b"a" * 10000},
    {"X-CSRF-Token": "\xe9".encode("latin-1")},
    {"Content-Type": b"multipart/form-data; boundary="},
    {"Content-Type": b"application/x-www-form-urlencoded; charset=klingon"},
)


def test_hostile_path_parameters_and_headers_never_crash(app: FastAPI) -> None:
    """Ids past 64 bits, NUL, NaN in the path; broken cookies, languages, proxies,
    tokens and content types in the headers: refused or served, never a 500."""
    crashes = []
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        csrf = log_in(client, ADMIN)
        form = {"csrf": csrf}
        for route, template in api_routes(app.routes):
            if "{" not in template or template.startswith("/webhooks/"):
                continue
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                for value in PATH_VALUES:
                    path = re.sub(r"\{(\w+)(:\w+)?\}", value, template)
                    response = client.request(method, path, data=form)
                    if response.status_code >= 500:
                        crashes.append((method, template, value[:12]))
        pause = f"/dashboard/lines/{LINE}/pause"  # refused: "x" is no CSRF token
        targets = (("GET", "/dashboard"), ("GET", "/api/overview"), ("POST", "/login"))
        for headers in ODD_HEADERS:
            for method, path in (*targets, ("POST", pause)):
                response = client.request(method, path, headers=headers, content=b"csrf=x")
                if response.status_code >= 500:
                    crashes.append((method, path, str(headers)[:30]))
    assert crashes == []
