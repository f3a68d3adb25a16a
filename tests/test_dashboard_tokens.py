"""Making an API token from the dashboard asks for the password (and code) again.

A token outlives the session that made it: with only a stolen session cookie, an attacker
must not be able to mint one and keep their access after the operator logs out."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from sqlalchemy import func, select
from starlette.testclient import TestClient

from antirelou.clock import VirtualClock
from antirelou.inbound import receive
from antirelou.phone import mask
from antirelou.service import Service
from antirelou.web import ratelimit
from antirelou.web.auth_tables import api_tokens
from antirelou.web.cli_users import tokens
from tests.dashboard_kit import (
    ADMIN,
    MODERATOR,
    PASSWORD,
    VIEWER,
    add_accounts,
    audited,
    client_for,
    config_for,
    dashboard_app,
    log_in,
    post_login,
)
from tests.helpers import LINE, sms
from tests.test_dashboard_totp import STEP, code_at, enable_for_admin

GENUINE = "+33612345678"
NEW_TOKEN = re.compile(r'id="new-token">([^<]+)<')


@pytest.fixture
def app(service: Service) -> FastAPI:
    add_accounts(service)
    return dashboard_app(service)


def tokens_made(service: Service) -> int:
    with service.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(api_tokens)).scalar_one())


def make_token(
    client: TestClient, csrf: str, password: str, code: str = "", expires: str | None = None
) -> tuple[int, str]:
    form = {"csrf": csrf, "name": "script", "password": password, "code": code}
    if expires is not None:
        form["expires"] = expires
    response = client.post("/dashboard/tokens", data=form)
    return response.status_code, html.unescape(response.text)


def test_a_session_alone_does_not_make_a_token(app: FastAPI, service: Service) -> None:
    with client_for(app, VIEWER) as (client, csrf):
        for password in ("", "not the password at all"):
            status, page = make_token(client, csrf, password)
            assert status == 403
            assert NEW_TOKEN.search(page) is None
            assert "aucun jeton n'a été créé" in page
        status, page = make_token(client, csrf, PASSWORD)
        assert status == 200
        assert NEW_TOKEN.search(page)
    assert tokens_made(service) == 1
    assert audited(service, "token_create_refused") == 2
    assert audited(service, "token_create") == 1


def test_guessing_the_password_through_the_token_form_is_rate_limited_like_a_login(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    with client_for(app, VIEWER) as (client, csrf):
        for _ in range(ratelimit.PER_ACCOUNT):
            assert make_token(client, csrf, "a wrong guess, again")[0] == 403
        # Now even the right password waits. The failures count against this browser,
        # trusted for the account since it logged in (devices.py), not against the account:
        # a stranger's guesses lock no one else out.
        status, page = make_token(client, csrf, PASSWORD)
        assert status == 429
        assert "attendez 15 minutes" in page
        with client_for(app) as (other, _):
            assert post_login(other, VIEWER).status_code == 303
        assert tokens_made(service) == 0
        clock.advance(ratelimit.WINDOW)
        assert make_token(client, csrf, PASSWORD)[0] == 200
    assert tokens_made(service) == 1


def test_an_account_with_a_second_factor_gives_a_fresh_code_too(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    enable_for_admin(service, clock)
    with client_for(app) as (client, _):
        csrf = log_in(client, ADMIN, code=code_at(clock))
        form = client.get("/dashboard/tokens").text
        assert 'name="code"' in form
        assert 'name="password"' in form
        login_code = code_at(clock)
        assert make_token(client, csrf, PASSWORD)[0] == 403
        assert make_token(client, csrf, PASSWORD, login_code)[0] == 403  # used up at login
        clock.advance(STEP * 3)
        status, page = make_token(client, csrf, PASSWORD, code_at(clock))
        assert status == 200
        assert NEW_TOKEN.search(page)
    assert tokens_made(service) == 1


def test_accounts_without_a_second_factor_are_not_asked_for_a_code(app: FastAPI) -> None:
    with client_for(app, VIEWER) as (client, _):
        form = client.get("/dashboard/tokens").text
    assert 'name="password"' in form
    assert 'name="code"' not in form


def works(app: FastAPI, token: str) -> bool:
    with client_for(app) as (anonymous, _):
        headers = {"Authorization": f"Bearer {token}"}
        status = anonymous.get("/api/overview", headers=headers).status_code
    assert status in (200, 401)
    return status == 200


def test_a_token_stops_working_when_it_expires(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    with client_for(app, VIEWER) as (client, csrf):
        made = {}
        for expires in ("30d", None, "never"):  # None: an old form, the default (90 days)
            status, page = make_token(client, csrf, PASSWORD, expires=expires)
            found = NEW_TOKEN.search(page)
            assert status == 200
            assert found
            made[expires] = found.group(1)
        listing = html.unescape(client.get("/dashboard/tokens").text)
        assert "expire le" in listing
        assert "jusqu'à révocation" in listing
    assert all(works(app, token) for token in made.values())
    clock.advance(timedelta(days=31))
    assert [works(app, t) for t in made.values()] == [False, True, True]
    clock.advance(timedelta(days=60))
    assert [works(app, t) for t in made.values()] == [False, False, True]


def test_a_lifetime_that_is_no_duration_makes_no_token(app: FastAPI, service: Service) -> None:
    with client_for(app, VIEWER) as (client, csrf):
        for expires in ("90", "forever", "-3d", "0s", "100000d"):
            status, _page = make_token(client, csrf, PASSWORD, expires=expires)
            assert status == 400, expires
    assert tokens_made(service) == 0


def test_the_terminal_makes_tokens_with_a_lifetime(tmp_path: Path, service: Service) -> None:
    add_accounts(service)
    config = config_for(service, tmp_path)
    create = ["create", VIEWER, "--config", str(config), "--expires"]
    made = CliRunner().invoke(tokens, [*create, "30d"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()  # the token alone on stdout, for scripts
    assert token.startswith("arl_")
    assert "it works until" in made.stderr
    refused = CliRunner().invoke(tokens, [*create, "forever"])
    assert refused.exit_code == 1
    assert "or never" in refused.output
    with service.engine.connect() as conn:
        expires_at = conn.execute(select(api_tokens.c.expires_at)).scalar_one()
    lifetime = expires_at - datetime.now(UTC)  # the command runs on the real clock
    assert timedelta(days=29, hours=23) < lifetime <= timedelta(days=30)


def test_an_admin_makes_a_read_only_token_for_a_dashboard_script(
    app: FastAPI, service: Service
) -> None:
    receipt = receive(service, sms(sender=GENUINE, body="Salut"))
    with client_for(app, ADMIN) as (client, csrf):
        form = {"csrf": csrf, "name": "grafana", "password": PASSWORD, "role": "viewer"}
        page = html.unescape(client.post("/dashboard/tokens", data=form).text)
        found = NEW_TOKEN.search(page)
        assert found
        assert "lecture" in page  # the list says what the token may do
        bearer = {"Authorization": f"Bearer {found.group(1)}"}
        sender = client.get(f"/api/senders/{receipt.message_id}", headers=bearer).json()
        assert sender["number"] == mask(GENUINE)  # an admin's token, a viewer's eyes
        assert client.post(f"/api/lines/{LINE}/pause", json={}, headers=bearer).status_code == 403
        assert (
            client.put("/api/caps", json={"daily_cap": 3, "total": 5}, headers=bearer).status_code
            == 403
        )
        assert client.get("/dashboard/settings").status_code == 200  # the account is still admin


def test_a_token_never_does_more_than_its_account(
    tmp_path: Path, app: FastAPI, service: Service
) -> None:
    with client_for(app, VIEWER) as (client, csrf):
        for role in ("admin", "moderator", "root"):
            form = {"csrf": csrf, "name": "x", "password": PASSWORD, "role": role}
            assert client.post("/dashboard/tokens", data=form).status_code == 400, role
    assert tokens_made(service) == 0
    config = config_for(service, tmp_path)
    refused = CliRunner().invoke(
        tokens, ["create", VIEWER, "--role", "admin", "--config", str(config)]
    )
    assert refused.exit_code == 1
    assert "cannot do more than its account" in refused.output
    assert tokens_made(service) == 0


def test_the_terminal_lists_and_revokes_anyone_s_tokens(
    tmp_path: Path, app: FastAPI, service: Service
) -> None:
    config = config_for(service, tmp_path)
    runner = CliRunner()
    made = runner.invoke(tokens, ["create", VIEWER, "--name", "grafana", "--config", str(config)])
    token = made.stdout.strip()
    listed = runner.invoke(tokens, ["list", "--config", str(config)]).output
    (line,) = listed.splitlines()
    token_id = line.split()[0]
    assert f"{VIEWER} 'grafana' " in line
    assert token not in listed  # only its digest is kept
    assert works(app, token)
    revoked = runner.invoke(tokens, ["revoke", token_id, "--config", str(config)])
    assert revoked.exit_code == 0, revoked.output
    assert not works(app, token)
    again = runner.invoke(tokens, ["revoke", token_id, "--config", str(config)])
    assert again.exit_code == 1
    assert "no active token" in again.output
    assert "revoked" in runner.invoke(tokens, ["list", "--config", str(config)]).output
    assert audited(service, "token_revoke") == 1


def test_an_admin_revokes_another_account_s_tokens_from_the_dashboard(
    app: FastAPI, service: Service
) -> None:
    with client_for(app, VIEWER) as (client, csrf):
        made = [NEW_TOKEN.search(make_token(client, csrf, PASSWORD)[1]) for _ in range(2)]
    viewer_tokens = [found.group(1) for found in made if found]
    assert len(viewer_tokens) == 2
    with client_for(app, ADMIN) as (client, csrf):
        admin_token = NEW_TOKEN.search(make_token(client, csrf, PASSWORD)[1])
        assert admin_token
        page = client.get("/dashboard/settings").text
        target = re.search(r"/dashboard/users/(\d+)/tokens/revoke", page.split(VIEWER, 1)[1])
        assert target
        revoke = f"/dashboard/users/{target.group(1)}/tokens/revoke"
        with client_for(app, MODERATOR) as (moderator, mod_csrf):
            assert moderator.post(revoke, data={"csrf": mod_csrf}).status_code == 403
        assert all(works(app, token) for token in viewer_tokens)
        done = client.post(revoke, data={"csrf": csrf})
        assert "Tous les jetons d'API de ce compte sont révoqués" in html.unescape(done.text)
    assert not any(works(app, token) for token in viewer_tokens)
    assert works(app, admin_token.group(1))  # only that account's tokens
    assert audited(service, "token_revoke_all") == 1
