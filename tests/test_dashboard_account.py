"""My account: a new password from the dashboard (the current one asked again) or, for a
forgotten one, from the terminal; either way every other session of the account ends."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from httpx import Response
from starlette.testclient import TestClient

from antirelou.clock import VirtualClock
from antirelou.service import Service
from antirelou.web.accounts import list_users
from antirelou.web.cli_users import users
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
from tests.test_dashboard_totp import STEP, code_at, enable_for_admin

NEW = "a brand new passphrase"


@pytest.fixture
def app(service: Service) -> FastAPI:
    add_accounts(service)
    return dashboard_app(service)


def change(
    client: TestClient, csrf: str, current: str, new: str, repeat: str | None = None, code: str = ""
) -> Response:
    form = {"csrf": csrf, "current": current, "code": code, "new": new}
    form["repeat"] = new if repeat is None else repeat
    return client.post("/dashboard/account/password", data=form, follow_redirects=False)


def logged_in(client: TestClient) -> bool:
    return client.get("/dashboard", follow_redirects=False).status_code == 200


def test_a_new_password_ends_every_other_session_and_keeps_this_one(
    app: FastAPI, service: Service
) -> None:
    with client_for(app, VIEWER) as (elsewhere, _), client_for(app, VIEWER) as (here, csrf):
        response = change(here, csrf, PASSWORD, NEW)
        assert response.status_code == 303
        assert logged_in(here)
        page = html.unescape(here.get(response.headers["location"]).text)
        assert "Mot de passe changé" in page
        assert not logged_in(elsewhere)  # another device, or a stolen copy of the cookie
    with client_for(app) as (fresh, _):
        assert post_login(fresh, VIEWER).status_code == 401
        assert post_login(fresh, VIEWER, NEW).status_code == 303
    assert audited(service, "user_change") == 1


@pytest.mark.parametrize(
    ("current", "new", "repeat", "status", "said"),
    [
        ("not the password at all", NEW, NEW, 403, "le mot de passe n'a pas été changé"),
        (PASSWORD, NEW, NEW + "!", 400, "Les deux nouveaux mots de passe diffèrent"),
        (PASSWORD, "short", "short", 400, "12 caractères"),
    ],
    ids=["wrong-current", "repeat-differs", "too-short"],
)
def test_a_refused_change_changes_nothing(
    app: FastAPI, current: str, new: str, repeat: str, status: int, said: str
) -> None:
    with client_for(app, VIEWER) as (client, csrf):
        response = change(client, csrf, current, new, repeat)
        assert response.status_code == status
        assert said in html.unescape(response.text)
        assert logged_in(client)
    with client_for(app) as (fresh, _):
        assert post_login(fresh, VIEWER).status_code == 303


def test_an_account_with_a_second_factor_gives_a_fresh_code(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    enable_for_admin(service, clock)
    with client_for(app) as (client, _):
        csrf = log_in(client, ADMIN, code=code_at(clock))
        assert 'name="code"' in client.get("/dashboard/account").text
        assert change(client, csrf, PASSWORD, NEW).status_code == 403
        clock.advance(STEP * 3)
        assert change(client, csrf, PASSWORD, NEW, code=code_at(clock)).status_code == 303
    assert audited(service, "password_change_refused") == 1


def test_the_terminal_sets_a_forgotten_password_and_enables_an_account(
    tmp_path: Path, app: FastAPI, service: Service
) -> None:
    config = config_for(service, tmp_path)
    runner = CliRunner()
    with client_for(app, VIEWER) as (client, _):
        done = runner.invoke(
            users, ["password", VIEWER, "--password-stdin", "--config", str(config)], input=NEW
        )
        assert done.exit_code == 0, done.output
        assert not logged_in(client)
    short = runner.invoke(users, ["password", VIEWER, "--password-stdin", "--config", str(config)],
                          input="short")  # fmt: skip
    assert short.exit_code == 1
    assert "12 characters" in short.output
    runner.invoke(users, ["disable", VIEWER, "--config", str(config)])
    with client_for(app) as (fresh, _):
        assert post_login(fresh, VIEWER, NEW).status_code == 401
        enabled = runner.invoke(users, ["enable", VIEWER, "--config", str(config)])
        assert enabled.exit_code == 0, enabled.output
        assert post_login(fresh, VIEWER, NEW).status_code == 303


# --- an admin sets a forgotten password from the settings page ------------------------------


def user_id(service: Service, email: str) -> int:
    return next(u.id for u in list_users(service) if u.email == email)


def set_for(
    client: TestClient, csrf: str, account: int, new: str, password: str, code: str = ""
) -> Response:
    form = {"csrf": csrf, "new": new, "password": password, "code": code}
    return client.post(f"/dashboard/users/{account}/password", data=form, follow_redirects=False)


def test_an_admin_sets_a_forgotten_password_and_ends_that_accounts_sessions(
    app: FastAPI, service: Service
) -> None:
    viewer = user_id(service, VIEWER)
    with client_for(app, VIEWER) as (theirs, _), client_for(app, ADMIN) as (admin, csrf):
        assert f"/dashboard/users/{viewer}/password" in admin.get("/dashboard/settings").text
        response = set_for(admin, csrf, viewer, NEW, PASSWORD)
        assert response.status_code == 303
        page = html.unescape(admin.get(response.headers["location"]).text)
        assert "Nouveau mot de passe défini" in page
        assert not logged_in(theirs)
        assert logged_in(admin)
    with client_for(app) as (fresh, _):
        assert post_login(fresh, VIEWER).status_code == 401
        assert post_login(fresh, VIEWER, NEW).status_code == 303
    assert audited(service, "user_change") == 1


@pytest.mark.parametrize(
    ("who", "new", "proof", "status", "said"),
    [
        (VIEWER, NEW, "not my password", 403, "le mot de passe n'a pas été défini"),
        (VIEWER, "short", PASSWORD, 400, "12 caractères"),
        (ADMIN, NEW, PASSWORD, 400, "sur la page de votre compte"),
    ],
    ids=["wrong-proof", "too-short", "own-account"],
)
def test_a_refused_reset_changes_nothing(
    app: FastAPI, service: Service, who: str, new: str, proof: str, status: int, said: str
) -> None:
    with client_for(app, ADMIN) as (admin, csrf):
        response = set_for(admin, csrf, user_id(service, who), new, proof)
        assert response.status_code == status
        assert said in html.unescape(response.text)
    with client_for(app) as (fresh, _):
        assert post_login(fresh, who).status_code == 303
    assert audited(service, "user_change") == 0
    assert audited(service, "user_password_refused") == (1 if status == 403 else 0)


def test_only_an_admin_with_the_forms_token_sets_a_password(app: FastAPI, service: Service) -> None:
    viewer = user_id(service, VIEWER)
    with client_for(app, MODERATOR) as (moderator, csrf):
        assert set_for(moderator, csrf, viewer, NEW, PASSWORD).status_code == 403
    with client_for(app, ADMIN) as (admin, _):
        assert set_for(admin, "forged", viewer, NEW, PASSWORD).status_code == 403
    with client_for(app) as (fresh, _):
        assert post_login(fresh, VIEWER).status_code == 303
    assert audited(service, "user_change") == 0


def test_my_account_lists_my_last_logins_and_the_new_networks(app: FastAPI) -> None:
    def from_address(address: str) -> TestClient:
        return TestClient(app, base_url="https://testserver", client=(address, 50000))

    with from_address("203.0.113.5") as first:
        log_in(first, MODERATOR)
    with from_address("198.51.100.9") as second:
        log_in(second, MODERATOR)
        with from_address("192.0.2.1") as other:
            log_in(other, VIEWER)  # not hers: not on her page
        page = second.get("/dashboard/account").text
    table = page.split('id="logins"')[1].split("</table>")[0]
    assert table.index("198.51.100.9") < table.index("203.0.113.5")  # the last first
    assert "198.51.100.0/24" in table
    assert table.count("nouveau réseau : alerte envoyée") == 1  # the second one
    assert "192.0.2.1" not in table
    assert "ce compte : 2." in html.unescape(page)  # two browsers trusted for it


def test_a_new_password_forgets_every_other_trusted_browser(app: FastAPI, service: Service) -> None:
    """A stolen laptop's device cookie is trusted no more once the password changes."""
    from antirelou.web import devices

    with client_for(app, MODERATOR) as (laptop, _):
        stolen = laptop.cookies[devices.SECURE_COOKIE]
    with client_for(app, MODERATOR) as (phone, csrf):
        kept = phone.cookies[devices.SECURE_COOKIE]
        assert change(phone, csrf, PASSWORD, NEW).status_code == 303
        renewed = phone.cookies[devices.SECURE_COOKIE]
        page = html.unescape(phone.get("/dashboard/account").text)
    assert renewed not in (stolen, kept)
    assert "ce compte : 1." in page  # this browser only
    guess_five_times(app, stolen)
    with client_for(app) as (anyone, _):  # the old cookie made a stranger of the thief:
        assert post_login(anyone, MODERATOR, NEW).status_code == 429  # the account counted


def test_the_terminal_lists_an_accounts_last_logins(
    app: FastAPI, service: Service, tmp_path: Path
) -> None:
    for address in ("203.0.113.5", "198.51.100.9"):
        with TestClient(app, base_url="https://testserver", client=(address, 50000)) as client:
            log_in(client, MODERATOR)
    config = config_for(service, tmp_path)
    listed = CliRunner().invoke(users, ["logins", MODERATOR, "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert "198.51.100.9  new network: alert sent" in lines[0]
    assert lines[1].endswith("203.0.113.5")
    assert lines[-1] == f"2 logins shown; 2 browsers trusted for {MODERATOR}"
    unknown = CliRunner().invoke(users, ["logins", "nobody@example.org", "--config", str(config)])
    assert unknown.exit_code != 0
    assert "no account nobody@example.org" in unknown.output


# --- a lost laptop: log out the other browsers, the password unchanged -----------------------


def log_out_others(client: TestClient, csrf: str, current: str = PASSWORD) -> Response:
    form = {"csrf": csrf, "current": current, "code": ""}
    return client.post("/dashboard/account/others", data=form, follow_redirects=False)


def guess_five_times(app: FastAPI, device: str) -> None:
    """Five wrong passwords for the moderator from a browser carrying `device`."""
    from antirelou.web import devices

    with client_for(app) as (thief, _):
        thief.cookies.set(devices.SECURE_COOKIE, device)
        for _ in range(5):
            post_login(thief, MODERATOR, "a guess a guess")


def test_my_other_browsers_are_logged_out_and_trusted_no_more(
    app: FastAPI, service: Service
) -> None:
    from antirelou.web import devices

    with client_for(app, MODERATOR) as (laptop, _), client_for(app, MODERATOR) as (phone, csrf):
        stolen = laptop.cookies[devices.SECURE_COOKIE]
        kept = phone.cookies[devices.SECURE_COOKIE]
        response = log_out_others(phone, csrf)
        assert response.status_code == 303
        page = html.unescape(phone.get(response.headers["location"]).text)
        assert "Vos autres navigateurs sont déconnectés" in page
        assert "ce compte : 1." in page  # this browser only
        assert logged_in(phone)
        assert not logged_in(laptop)
        assert phone.cookies[devices.SECURE_COOKIE] == kept  # still trusted, not renewed
    guess_five_times(app, stolen)  # the laptop is a stranger now: its guesses count
    with client_for(app) as (anyone, _):  # against the account...
        assert post_login(anyone, MODERATOR).status_code == 429
    with client_for(app) as (mine, _):  # ...but not against the browser she kept
        mine.cookies.set(devices.SECURE_COOKIE, kept)
        assert post_login(mine, MODERATOR).status_code == 303
    assert audited(service, "user_logout_others") == 1


def test_logging_out_the_other_browsers_needs_the_password(app: FastAPI, service: Service) -> None:
    """A stolen session alone cannot turn the holder's own browsers out."""
    with client_for(app, MODERATOR) as (mine, _), client_for(app, MODERATOR) as (thief, csrf):
        response = log_out_others(thief, csrf, "not the password")
        assert response.status_code == 403
        assert "aucun navigateur n'a été déconnecté" in html.unescape(response.text)
        assert 'id="others-error"' in response.text
        assert 'id="password-error"' not in response.text
        assert log_out_others(thief, "forged").status_code == 403  # and the form's token
        assert logged_in(mine)
    assert audited(service, "user_logout_others") == 0
    assert audited(service, "user_logout_others_refused") == 1


def test_the_terminal_logs_an_account_out_of_every_browser(
    app: FastAPI, service: Service, tmp_path: Path
) -> None:
    from antirelou.web import devices

    config = config_for(service, tmp_path)
    with client_for(app, MODERATOR) as (laptop, _), client_for(app, VIEWER) as (other, _):
        stolen = laptop.cookies[devices.SECURE_COOKIE]
        done = CliRunner().invoke(users, ["logout", MODERATOR, "--config", str(config)])
        assert done.exit_code == 0, done.output
        assert done.output.strip().endswith("1 trusted browsers forgotten")
        assert not logged_in(laptop)
        assert logged_in(other)  # another account's session goes on
    guess_five_times(app, stolen)
    with client_for(app) as (anyone, _):
        assert post_login(anyone, MODERATOR).status_code == 429
    unknown = CliRunner().invoke(users, ["logout", "nobody@example.org", "--config", str(config)])
    assert unknown.exit_code != 0
    assert "no account nobody@example.org" in unknown.output
