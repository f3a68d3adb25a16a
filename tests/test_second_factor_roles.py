"""[web] second_factor_roles: accounts of those roles cannot use the dashboard or the API
without a second factor, whatever credential they bring (web/accounts.lacks_second_factor)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from starlette.testclient import TestClient

from antirelou import models
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.service import Service
from antirelou.web.accounts import Role
from antirelou.web.cli_users import users as users_cli
from antirelou.web.sessions import create_token
from tests.dashboard_kit import (
    ADMIN,
    MODERATOR,
    add_accounts,
    client_for,
    dashboard_app,
    log_in,
    post_login,
)
from tests.helpers import LINE, make_settings
from tests.test_dashboard_totp import code_at, enable_for_admin, user_id

STRICT = {"second_factor_roles": ["admin"]}


@pytest.fixture
def strict(database_url: str, clock: VirtualClock) -> Iterator[Service]:
    """A second service on the same database whose admins need a second factor."""
    settings = make_settings(database_url, web=STRICT)
    svc = Service(settings, make_engine(database_url), clock)
    yield svc
    svc.dispose()


def audited(service: Service, action: str) -> list[str]:
    a = models.audit_log
    with service.engine.connect() as conn:
        return list(conn.execute(select(a.c.actor).where(a.c.action == action)).scalars())


def test_an_admin_without_a_second_factor_is_told_why_and_gets_no_session(
    service: Service, strict: Service
) -> None:
    add_accounts(service)
    with client_for(dashboard_app(strict)) as (client, _):
        refused = post_login(client, ADMIN)
        assert refused.status_code == 403
        assert "second facteur" in refused.text
        assert "antirelou users totp enable" in refused.text
        assert client.get("/dashboard", follow_redirects=False).status_code == 303
        log_in(client, MODERATOR)  # a role the setting does not name logs in as before
    assert audited(strict, "login_refused_no_second_factor") == [f"web:{ADMIN}"]


def test_the_reason_is_given_only_once_the_password_is_right(
    service: Service, strict: Service
) -> None:
    add_accounts(service)
    with client_for(dashboard_app(strict)) as (client, _):
        wrong = post_login(client, ADMIN, password="not the password at all")
        assert wrong.status_code == 401
        assert "second facteur" not in wrong.text


def test_an_admin_with_a_second_factor_logs_in(
    service: Service, strict: Service, clock: VirtualClock
) -> None:
    add_accounts(service)
    enable_for_admin(service, clock)
    with client_for(dashboard_app(strict)) as (client, _):
        log_in(client, ADMIN, code=code_at(clock))
        assert client.get("/dashboard", follow_redirects=False).status_code == 200


def test_sessions_and_tokens_opened_before_the_setting_stop_working(
    service: Service, strict: Service
) -> None:
    add_accounts(service)
    admin = user_id(service, ADMIN)
    with service.engine.begin() as conn:
        token = create_token(conn, admin, "script", service.clock.now(), None)
        # A token that does less than its account: the account's own role still decides.
        reader = create_token(conn, admin, "grafana", service.clock.now(), None, role=Role.VIEWER)
    bearer = {"Authorization": f"Bearer {token}"}
    reading = {"Authorization": f"Bearer {reader}"}
    with client_for(dashboard_app(service), ADMIN) as (before, _):
        assert before.get("/dashboard", follow_redirects=False).status_code == 200
        assert before.get("/api/overview", headers=bearer).status_code == 200
        assert before.get("/api/overview", headers=reading).status_code == 200
        cookies = dict(before.cookies)
    with TestClient(dashboard_app(strict), base_url="https://testserver") as after:
        after.cookies.update(cookies)
        assert after.get("/dashboard", follow_redirects=False).status_code == 303
        assert after.get("/api/overview", headers=bearer).status_code == 401
        assert after.get("/api/overview", headers=reading).status_code == 401


def test_the_cli_says_when_an_account_cannot_log_in_yet(tmp_path: Path, service: Service) -> None:
    config = tmp_path / "antirelou.toml"
    config.write_text(
        f'database_url = "{service.settings.database_url}"\n'
        '[web]\nsecond_factor_roles = ["admin"]\n'
        f'[[lines]]\nnumber = "{LINE}"\nprovider = "sandbox"\n'
    )
    add = ["add", "new@example.org", "--role", "admin", "--password-stdin", "--config"]
    added = CliRunner().invoke(users_cli, [*add, str(config)], input="a long enough password\n")
    assert added.exit_code == 0, added.output
    assert "cannot log in before: antirelou users totp enable new@example.org" in added.output
    viewer = ["add", "v2@example.org", "--role", "viewer", "--password-stdin", "--config"]
    plain = CliRunner().invoke(users_cli, [*viewer, str(config)], input="a long enough password\n")
    assert "cannot log in" not in plain.output


def test_the_setting_accepts_only_role_names(database_url: str) -> None:
    from antirelou.settings import ConfigError

    with pytest.raises(ConfigError, match="second_factor_roles"):
        make_settings(database_url, web={"second_factor_roles": ["root"]})
