"""A link made on the server trusts a new browser for an account (web/device_links.py):
the way in for an operator on a new browser while a raid keeps her account locked out."""

from __future__ import annotations

import html
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from httpx import Response
from starlette.testclient import TestClient

from antirelou.clock import VirtualClock
from antirelou.service import Service
from antirelou.web import devices
from antirelou.web.accounts import find_user
from antirelou.web.cli_users import users
from tests.dashboard_kit import (
    MODERATOR,
    add_accounts,
    audited,
    client_for,
    config_for,
    csrf_of,
    dashboard_app,
    post_login,
)


@pytest.fixture
def app(service: Service) -> FastAPI:
    add_accounts(service)
    return dashboard_app(service)


def lock_out(app: FastAPI) -> None:
    """A raid's failed logins: the account is locked for every browser not trusted for it."""
    with client_for(app) as (raider, _):
        for _ in range(5):
            post_login(raider, MODERATOR, "a guess a guess")
    with client_for(app) as (anyone, _):
        assert post_login(anyone, MODERATOR).status_code == 429


def make_link(service: Service, lasts: timedelta = devices.LINK_LASTS) -> str:
    with service.engine.begin() as conn:
        user = find_user(conn, MODERATOR)
        assert user is not None
        return devices.make_link(conn, user.id, service.clock.now(), lasts)


def open_link(client: TestClient, token: str) -> Response:
    """What her browser does: the page (a preview would stop there), then its button."""
    page = client.get("/login/device", params={"t": token})
    assert page.status_code == 200
    form = {"t": token, "csrf": csrf_of(page.text)}
    response: Response = client.post("/login/device", data=form, follow_redirects=False)
    return response


def test_a_link_lets_a_new_browser_in_during_a_lockout(app: FastAPI, service: Service) -> None:
    lock_out(app)
    token = make_link(service)
    with client_for(app) as (new, _):
        new.get("/login/device", params={"t": token})  # a chat app's preview: nothing used
        response = open_link(new, token)
        assert response.status_code == 200
        assert f"Ce navigateur est reconnu pour {MODERATOR}" in html.unescape(response.text)
        trusted = new.cookies[devices.SECURE_COOKIE]
        assert trusted != token  # a fresh one, not the printed one
        assert post_login(new, MODERATOR, "a wrong one").status_code == 401  # still asked
        assert post_login(new, MODERATOR).status_code == 303
        assert new.cookies[devices.SECURE_COOKIE] == trusted  # the login knew it
        assert "ce compte : 1." in html.unescape(new.get("/dashboard/account").text)
    assert audited(service, "device_link_used") == 1


def test_a_link_works_once_and_is_no_device_cookie(app: FastAPI, service: Service) -> None:
    lock_out(app)
    token = make_link(service)
    with client_for(app) as (first, _):
        assert open_link(first, token).status_code == 200
    with client_for(app) as (second, _):
        again = open_link(second, token)
        assert again.status_code == 403
        assert "déjà utilisé ou expiré" in html.unescape(again.text)
        assert devices.SECURE_COOKIE not in second.cookies
    unused = make_link(service)
    with client_for(app) as (thief, _):  # the token from a proxy's log, used as a cookie
        thief.cookies.set(devices.SECURE_COOKIE, unused)
        assert post_login(thief, MODERATOR).status_code == 429
    with client_for(app) as (mine, _):  # and it was not used up by that
        assert open_link(mine, unused).status_code == 200


def test_an_expired_link_or_a_forged_form_trusts_nothing(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    token = make_link(service, timedelta(minutes=15))
    clock.advance(timedelta(minutes=16))
    with client_for(app) as (late, _):
        assert open_link(late, token).status_code == 403
    fresh = make_link(service)
    with client_for(app) as (forged, _):
        posted = forged.post("/login/device", data={"t": fresh, "csrf": "forged"})
        assert posted.status_code == 403
        assert open_link(forged, fresh).status_code == 200  # still usable once, properly
        assert forged.get("/login/device", params={"t": "x" * 65}).status_code == 400
    assert audited(service, "device_link_used") == 1


def test_a_link_waiting_is_no_trusted_browser(app: FastAPI, service: Service) -> None:
    make_link(service)
    with client_for(app, MODERATOR) as (mine, _):
        assert "ce compte : 1." in html.unescape(mine.get("/dashboard/account").text)


def test_the_terminal_makes_a_link(app: FastAPI, service: Service, tmp_path: Path) -> None:
    config = config_for(service, tmp_path)
    runner = CliRunner()
    made = runner.invoke(users, ["trust-link", MODERATOR, "--config", str(config)])
    assert made.exit_code == 0, made.output
    url = made.output.strip().splitlines()[-1]
    assert url.startswith("http://127.0.0.1:8000/login/device?t=")  # public_url's default
    token = parse_qs(urlsplit(url).query)["t"][0]
    lock_out(app)
    with client_for(app) as (new, _):
        assert open_link(new, token).status_code == 200
        assert post_login(new, MODERATOR).status_code == 303
    assert audited(service, "device_link_create") == 1
    for valid, said in (("2d", "at most 1d"), ("0s", "some time"), ("soon", "not a duration")):
        refused = runner.invoke(
            users, ["trust-link", MODERATOR, "--valid", valid, "--config", str(config)]
        )
        assert refused.exit_code == 2
        assert said in refused.output
    unknown = runner.invoke(users, ["trust-link", "nobody@example.org", "--config", str(config)])
    assert unknown.exit_code != 0
    assert "no account nobody@example.org" in unknown.output


def test_a_link_opened_on_a_shared_laptop_keeps_its_other_account(
    app: FastAPI, service: Service
) -> None:
    from tests.dashboard_kit import ADMIN

    with client_for(app, ADMIN) as (laptop, csrf):
        cookie = laptop.cookies[devices.SECURE_COOKIE]
        laptop.post("/logout", data={"csrf": csrf})
        lock_out(app)
        assert open_link(laptop, make_link(service)).status_code == 200
        assert laptop.cookies[devices.SECURE_COOKIE] == cookie  # trusted for both now
        assert post_login(laptop, MODERATOR).status_code == 303
