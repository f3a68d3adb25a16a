"""Accounts, login, sessions, rate limiting and logout."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from starlette.testclient import TestClient

from antirelou import models
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.operations import OperationError
from antirelou.service import Service
from antirelou.web import devices, ratelimit
from antirelou.web.accounts import Role, change_user, create_user, find_user
from antirelou.web.auth_tables import digest, login_failures, trusted_devices, users
from antirelou.web.guard import SECURE_COOKIE
from tests.dashboard_kit import (
    ADMIN,
    MODERATOR,
    PASSWORD,
    VIEWER,
    add_accounts,
    client_for,
    csrf_of,
    dashboard_app,
    log_in,
)
from tests.helpers import make_settings


@pytest.fixture
def app(service: Service) -> FastAPI:
    add_accounts(service)
    return dashboard_app(service)


def test_passwords_are_argon2_hashes(service: Service) -> None:
    create_user(service, "a@example.org", PASSWORD, Role.VIEWER, "test")
    with service.engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_short_password_and_duplicate_email_are_refused(service: Service) -> None:
    with pytest.raises(OperationError, match="12 characters"):
        create_user(service, "a@example.org", "short", Role.VIEWER, "test")
    create_user(service, "a@example.org", PASSWORD, Role.VIEWER, "test")
    with pytest.raises(OperationError, match="already"):
        create_user(service, "A@example.org ", PASSWORD, Role.ADMIN, "test")


def test_login_sets_a_secure_session_cookie_and_logout_ends_it(app: FastAPI) -> None:
    with client_for(app) as (client, _):
        form = client.get("/login")
        response = client.post(
            "/login",
            data={"email": ADMIN, "password": PASSWORD, "csrf": csrf_of(form.text)},
            follow_redirects=False,
        )
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(SECURE_COOKIE + "=")
        for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
            assert flag.lower() in cookie.lower()
        page = client.get("/dashboard")
        assert page.status_code == 200
        csrf = csrf_of(page.text)
        out = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
        assert out.status_code == 303
        assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_a_stolen_cookie_is_useless_after_logout(app: FastAPI) -> None:
    with client_for(app, ADMIN) as (client, csrf):
        token = client.cookies.get(SECURE_COOKIE)
        client.post("/logout", data={"csrf": csrf})
    with client_for(app) as (thief, _):
        thief.cookies.set(SECURE_COOKIE, token or "")
        assert thief.get("/dashboard", follow_redirects=False).status_code == 303


def test_wrong_password_is_refused_without_saying_which_part(app: FastAPI) -> None:
    with client_for(app) as (client, _):
        for email in (ADMIN, "nobody@example.org"):
            form = client.get("/login")
            response = client.post(
                "/login",
                data={"email": email, "password": "wrong password!", "csrf": csrf_of(form.text)},
            )
            assert response.status_code == 401
            assert "Wrong email, password or code" in response.text or "incorrect" in response.text


def test_login_without_its_csrf_token_is_refused(app: FastAPI) -> None:
    with client_for(app) as (client, _):
        client.get("/login")
        response = client.post("/login", data={"email": ADMIN, "password": PASSWORD})
        assert response.status_code == 403
        # A token that is not even ASCII is a wrong token too, not a server error.
        forged = {"email": ADMIN, "password": PASSWORD, "csrf": "jéton-forgé"}
        assert client.post("/login", data=forged).status_code == 403


def test_a_non_ascii_csrf_token_on_an_action_is_refused_not_a_crash(app: FastAPI) -> None:
    with client_for(app, ADMIN) as (client, _):
        response = client.post("/dashboard/lines/+33939000021/pause", data={"csrf": "jéton-forgé"})
        assert response.status_code == 403


def test_login_is_rate_limited_per_account(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    with client_for(app) as (client, _):
        for _ in range(ratelimit.PER_ACCOUNT):
            form = client.get("/login")
            client.post(
                "/login",
                data={"email": ADMIN, "password": "guess guess guess", "csrf": csrf_of(form.text)},
            )
        form = client.get("/login")
        right = client.post(
            "/login", data={"email": ADMIN, "password": PASSWORD, "csrf": csrf_of(form.text)}
        )
        assert right.status_code == 429  # even the right password waits
        clock.advance(ratelimit.WINDOW)
        log_in(client, ADMIN)


WRONG = "guess guess guess"


def guess(client: TestClient, email: str, password: str = WRONG) -> int:
    form = client.get("/login")
    data = {"email": email, "password": password, "csrf": csrf_of(form.text)}
    return client.post("/login", data=data, follow_redirects=False).status_code


def test_a_strangers_failures_do_not_lock_out_a_browser_that_logged_in(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    with client_for(app, ADMIN) as (hers, _):
        hers.post("/logout", data={"csrf": csrf_of(hers.get("/dashboard").text)})
        assert hers.cookies.get(devices.SECURE_COOKIE)  # kept after logging out
        with client_for(app) as (stranger, _):
            for _ in range(ratelimit.PER_ACCOUNT * 3):
                guess(stranger, ADMIN)
            assert guess(stranger, ADMIN, PASSWORD) == 429  # the account, from elsewhere
        assert guess(hers, ADMIN, PASSWORD) == 303  # her own browser gets in
        with service.engine.connect() as conn:  # the cookie is only kept as a digest
            stored = conn.execute(select(trusted_devices.c.token_hash)).scalars().all()
        assert stored == [digest(hers.cookies[devices.SECURE_COOKIE])]


def test_a_trusted_browser_that_keeps_guessing_locks_itself_alone(
    app: FastAPI, clock: VirtualClock
) -> None:
    with client_for(app, ADMIN) as (hers, csrf):
        hers.post("/logout", data={"csrf": csrf})
        for _ in range(ratelimit.PER_DEVICE):
            assert guess(hers, ADMIN) == 401
        assert guess(hers, ADMIN, PASSWORD) == 429
        with client_for(app) as (other, _):
            assert guess(other, ADMIN, PASSWORD) == 303  # the account was not locked
        clock.advance(ratelimit.WINDOW)
        assert guess(hers, ADMIN, PASSWORD) == 303


def test_a_device_cookie_counts_only_for_its_own_account(app: FastAPI) -> None:
    """The admin's browser trying the viewer's account is any stranger to that account."""
    with client_for(app, ADMIN) as (client, csrf):
        client.post("/logout", data={"csrf": csrf})
        for _ in range(ratelimit.PER_ACCOUNT):
            guess(client, VIEWER)
        with client_for(app) as (other, _):
            assert guess(other, VIEWER, PASSWORD) == 429
        cookie = client.cookies[devices.SECURE_COOKIE]
        assert guess(client, ADMIN, PASSWORD) == 303
        assert client.cookies[devices.SECURE_COOKIE] == cookie  # known: not replaced


def test_a_shared_laptop_is_trusted_for_every_account_that_logged_in_on_it(
    app: FastAPI,
) -> None:
    """A collective's laptop: both operators stay trusted on it, and a raid failing logins
    with either address locks neither out of it. Its own guesses at one account lock only
    that account on it."""
    with client_for(app, ADMIN) as (laptop, csrf):
        cookie = laptop.cookies[devices.SECURE_COOKIE]
        laptop.post("/logout", data={"csrf": csrf})
        laptop.post("/logout", data={"csrf": log_in(laptop, MODERATOR)})
        assert laptop.cookies[devices.SECURE_COOKIE] == cookie  # the same token, for both
        with client_for(app) as (raid, _):
            for account in (ADMIN, MODERATOR):
                for _ in range(ratelimit.PER_ACCOUNT):
                    guess(raid, account)
                assert guess(raid, account, PASSWORD) == 429
        for _ in range(ratelimit.PER_DEVICE):
            guess(laptop, MODERATOR)
        assert guess(laptop, MODERATOR, PASSWORD) == 429  # its guesses lock it for her...
        assert guess(laptop, ADMIN, PASSWORD) == 303  # ...not for the other account
        assert laptop.cookies[devices.SECURE_COOKIE] == cookie


def test_rate_limit_per_address_covers_many_accounts(service: Service) -> None:
    now = service.clock.now()
    with service.engine.begin() as conn:
        for i in range(ratelimit.PER_ADDRESS):
            ratelimit.record_failure(conn, f"user{i}@example.org", "203.0.113.9", now)
        assert ratelimit.is_limited(conn, "other@example.org", "203.0.113.9", now)
        assert not ratelimit.is_limited(conn, "other@example.org", "198.51.100.1", now)


def test_disabling_an_account_ends_its_sessions(app: FastAPI, service: Service) -> None:
    with client_for(app, VIEWER) as (client, _):
        with service.engine.connect() as conn:
            user = find_user(conn, VIEWER)
        assert user is not None
        change_user(service, user.id, "test", disabled=True)
        assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_login_redirects_only_to_our_own_paths(app: FastAPI) -> None:
    with client_for(app) as (client, _):
        form = client.get("/login")
        response = client.post(
            "/login",
            data={
                "email": ADMIN,
                "password": PASSWORD,
                "csrf": csrf_of(form.text),
                "next": "//evil.example/x",
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == "/dashboard"


def test_logins_and_logouts_are_audited(app: FastAPI, service: Service) -> None:
    with client_for(app, ADMIN) as (client, csrf):
        client.post("/logout", data={"csrf": csrf})
    with service.engine.connect() as conn:
        rows = conn.execute(select(models.audit_log.c.action, models.audit_log.c.actor)).all()
    assert ("login", f"web:{ADMIN}") in rows
    assert ("logout", f"web:{ADMIN}") in rows


def test_a_flood_of_logins_spends_little_cpu_and_operators_still_get_in(
    database_url: str, clock: VirtualClock
) -> None:
    """Past `login_checks_per_minute` (all addresses together) untrusted attempts are
    refused without an argon2 check; a browser trusted for the account is not counted."""
    web = {"login_checks_per_minute": 1, "login_checks_burst": 3}  # a token a minute
    service = Service(make_settings(database_url, web=web), make_engine(database_url), clock)
    add_accounts(service)
    app = dashboard_app(service)
    with client_for(app, ADMIN) as (hers, csrf):  # check 1 of 3
        hers.post("/logout", data={"csrf": csrf})
        with client_for(app) as (raider, _):
            assert guess(raider, VIEWER) == 401  # 2
            assert guess(raider, MODERATOR) == 401  # 3
            form = raider.get("/login")
            data = {"email": VIEWER, "password": PASSWORD, "csrf": csrf_of(form.text)}
            busy = raider.post("/login", data=data)
            assert busy.status_code == 429  # even the right password: no check left
            assert "Trop de connexions sont tentées en ce moment" in busy.text
        assert guess(hers, ADMIN, PASSWORD) == 303  # her browser is not counted
    with service.engine.connect() as conn:  # the refused attempt was no failure either
        failures = conn.execute(select(func.count()).select_from(login_failures)).scalar()
    assert failures == 4  # two wrong guesses, each under its account and its address
    service.dispose()


def test_during_a_login_flood_a_form_asking_the_password_again_says_so(
    database_url: str, clock: VirtualClock
) -> None:
    """Not "wrong password": a session from before device cookies has none to show."""
    from tests.test_dashboard_tokens import make_token

    web = {"login_checks_per_minute": 1, "login_checks_burst": 1}
    service = Service(make_settings(database_url, web=web), make_engine(database_url), clock)
    add_accounts(service)
    with client_for(dashboard_app(service), ADMIN) as (client, csrf):  # the one check
        client.cookies.delete(devices.SECURE_COOKIE)
        status, page = make_token(client, csrf, PASSWORD)
    assert status == 429
    assert "Trop de connexions sont tentées en ce moment" in page
    service.dispose()
