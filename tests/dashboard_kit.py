"""Builders for the dashboard tests: an app with the dashboard installed, accounts, logins."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI
from httpx import Response
from sqlalchemy import func, select
from starlette.testclient import TestClient

from antirelou import models
from antirelou.service import Service
from antirelou.web.accounts import Role, create_user
from antirelou.web.app import create_app
from antirelou.web.dashboard import install
from tests.helpers import LINE

PASSWORD = "correct horse battery"
ADMIN, MODERATOR, VIEWER = "admin@example.org", "mod@example.org", "viewer@example.org"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def dashboard_app(service: Service, **options: object) -> FastAPI:
    app = create_app(service)
    install(app, **options)  # type: ignore[arg-type]
    return app


def add_accounts(service: Service) -> None:
    for email, role in ((ADMIN, Role.ADMIN), (MODERATOR, Role.MODERATOR), (VIEWER, Role.VIEWER)):
        create_user(service, email, PASSWORD, role, "test")


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def post_login(
    client: TestClient, email: str, password: str = PASSWORD, code: str = ""
) -> Response:
    """Fill and send the login form (its CSRF token included); the response, unfollowed."""
    form = client.get("/login")
    data = {"email": email, "password": password, "csrf": csrf_of(form.text), "next": "/dashboard"}
    if code:
        data["code"] = code
    response: Response = client.post("/login", data=data, follow_redirects=False)
    return response


def log_in(client: TestClient, email: str, password: str = PASSWORD, code: str = "") -> str:
    """Log in through the form; return the session's CSRF token."""
    response = post_login(client, email, password, code)
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/dashboard").text)


@contextmanager
def client_for(app: FastAPI, email: str | None = None) -> Iterator[tuple[TestClient, str]]:
    """A client over https (the cookie is Secure), logged in as `email` when given."""
    with TestClient(app, base_url="https://testserver") as client:
        csrf = log_in(client, email) if email else ""
        yield client, csrf


def audited(service: Service, action: str) -> int:
    """How many audit rows record `action`."""
    log = models.audit_log
    with service.engine.connect() as conn:
        query = select(func.count()).select_from(log).where(log.c.action == action)
        return int(conn.execute(query).scalar_one())


def config_for(service: Service, folder: Path) -> Path:
    """A configuration file for the CLI commands, on the test's database."""
    config = folder / "antirelou.toml"
    config.write_text(
        f'database_url = "{service.settings.database_url}"\n'
        f'[[lines]]\nnumber = "{LINE}"\nprovider = "sandbox"\n'
    )
    return config
