"""A second factor at login: codes from an authenticator app (web/totp.py)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from sqlalchemy import select

from antirelou import cli, models
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.operations import OperationError
from antirelou.service import Service
from antirelou.web import ratelimit, totp
from antirelou.web.accounts import find_user
from antirelou.web.auth_tables import recovery_codes, users
from antirelou.web.cli_users import users as users_cli
from antirelou.web.sealing import SealError
from tests.dashboard_kit import (
    ADMIN,
    MODERATOR,
    VIEWER,
    add_accounts,
    client_for,
    dashboard_app,
    log_in,
    post_login,
)
from tests.helpers import LINE, make_settings

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
STEP = timedelta(seconds=30)


@pytest.fixture
def app(service: Service) -> FastAPI:
    add_accounts(service)
    return dashboard_app(service)


def user_id(service: Service, email: str) -> int:
    with service.engine.connect() as conn:
        user = find_user(conn, email)
    assert user is not None
    return user.id


def code_at(clock: VirtualClock, offset: int = 0) -> str:
    return pyotp.TOTP(SECRET).at(clock.now(), counter_offset=offset)


def enable_for_admin(service: Service, clock: VirtualClock) -> None:
    """Turn the second factor on for ADMIN, then let the enrolment's code go stale."""
    totp.enable(service, user_id(service, ADMIN), SECRET, code_at(clock), "test")
    clock.advance(STEP * 3)


def test_an_account_with_a_second_factor_needs_its_code(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    enable_for_admin(service, clock)
    with client_for(app) as (client, _):
        for wrong in ("", "000000", code_at(clock, offset=-3), "١٢٣٤٥٦", "abcdef"):
            response = post_login(client, ADMIN, code=wrong)
            assert response.status_code == 401, wrong
            # The same words as a wrong password: the form never says the password was right.
            assert "E-mail, mot de passe ou code incorrect" in response.text
        clock.advance(ratelimit.WINDOW)  # those were five failures: the account waits
        log_in(client, ADMIN, code=code_at(clock))
        assert client.get("/dashboard", follow_redirects=False).status_code == 200


def test_accounts_without_a_second_factor_log_in_as_before(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    enable_for_admin(service, clock)
    with client_for(app) as (client, _):
        log_in(client, VIEWER)
    with client_for(app) as (client, _):
        log_in(client, VIEWER, code="123456")  # a code given needlessly changes nothing


def test_a_code_is_accepted_once(app: FastAPI, service: Service, clock: VirtualClock) -> None:
    enable_for_admin(service, clock)
    code = code_at(clock)
    with client_for(app) as (client, _):
        log_in(client, ADMIN, code=code)
    with client_for(app) as (thief, _):
        assert post_login(thief, ADMIN, code=code).status_code == 401
        # An older code, still within the clock drift allowed, is refused too: it is not
        # newer than the one used.
        assert post_login(thief, ADMIN, code=code_at(clock, offset=-1)).status_code == 401
        clock.advance(STEP)
        log_in(thief, ADMIN, code=code_at(clock))


def test_codes_one_step_either_side_are_accepted_for_clock_drift(clock: VirtualClock) -> None:
    now = clock.now()
    current = pyotp.TOTP(SECRET).timecode(now)
    for offset in (-1, 0, 1):
        assert totp.matching_step(SECRET, code_at(clock, offset), now) == current + offset
    for offset in (-2, 2):
        assert totp.matching_step(SECRET, code_at(clock, offset), now) is None
    spaced = code_at(clock)[:3] + " " + code_at(clock)[3:]  # as the apps show it
    assert totp.matching_step(SECRET, spaced, now) == current
    for odd in ("", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "１２３４５６", "12345\x00"):
        assert totp.matching_step(SECRET, odd, now) is None, odd


def test_wrong_codes_count_towards_the_login_limit(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    enable_for_admin(service, clock)
    with client_for(app) as (client, _):
        for i in range(ratelimit.PER_ACCOUNT):
            # The right password, guessed codes: a million codes must not be tried freely.
            assert post_login(client, ADMIN, code=f"{i:06d}").status_code == 401
        assert post_login(client, ADMIN, code=code_at(clock)).status_code == 429


def test_enabling_refuses_a_wrong_code_and_changes_nothing(
    service: Service, clock: VirtualClock
) -> None:
    add_accounts(service)
    with pytest.raises(OperationError, match="does not match"):
        totp.enable(service, user_id(service, ADMIN), SECRET, "000000", "test")
    with service.engine.connect() as conn:
        assert conn.execute(select(users.c.totp_secret)).scalars().all() == [None] * 3


def test_enabling_ends_open_sessions_and_both_changes_are_audited(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    with client_for(app, ADMIN) as (client, _):
        enable_for_admin(service, clock)
        # A session opened before (perhaps with a stolen password) is over.
        assert client.get("/dashboard", follow_redirects=False).status_code == 303
    totp.disable(service, user_id(service, ADMIN), "test")
    with client_for(app, ADMIN):
        pass  # the password alone again
    with service.engine.connect() as conn:
        actions = conn.execute(
            select(models.audit_log.c.action).where(models.audit_log.c.target == ADMIN)
        ).scalars()
        assert {"user_totp_enable", "user_totp_disable"} <= set(actions)


def cli_setup(tmp_path: Path, service: Service, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config file for the CLI on the test's database, the accounts, a known secret."""
    config = tmp_path / "antirelou.toml"
    config.write_text(
        f'database_url = "{service.settings.database_url}"\n'
        f'[web]\ntotp_key_path = "{service.settings.web.totp_key_path}"\n'
        f'[evidence]\nkey_path = "{service.settings.evidence.key_path}"\n'
        f'[[lines]]\nnumber = "{LINE}"\nprovider = "sandbox"\n'
    )
    add_accounts(service)
    monkeypatch.setattr(totp, "new_secret", lambda: SECRET)
    return config


def test_the_cli_enrols_with_a_qr_code_and_a_confirmed_code(
    tmp_path: Path, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = cli_setup(tmp_path, service, monkeypatch)
    args = ["totp", "enable", ADMIN, "--config", str(config)]
    refused = CliRunner().invoke(users_cli, args, input="000000\n")
    assert refused.exit_code == 1
    assert "does not match" in refused.output
    # The CLI runs on the system clock; a code of the step before or after is accepted too.
    result = CliRunner().invoke(users_cli, args, input=pyotp.TOTP(SECRET).now() + "\n")
    assert result.exit_code == 0, result.output
    assert SECRET in result.output  # the key, for typing it into the app
    assert "█" in result.output or "▀" in result.output  # the QR code, in the terminal
    listing = CliRunner().invoke(users_cli, ["list", "--config", str(config)])
    assert f"{ADMIN} admin +code (10 recovery codes left)" in listing.output
    off = CliRunner().invoke(users_cli, ["totp", "disable", ADMIN, "--config", str(config)])
    assert off.exit_code == 0, off.output
    with service.engine.connect() as conn:
        assert conn.execute(select(users.c.totp_secret)).scalars().all() == [None] * 3


def test_the_accounts_list_shows_who_has_a_second_factor(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    enable_for_admin(service, clock)
    with client_for(app) as (client, _):
        log_in(client, ADMIN, code=code_at(clock))
        page = client.get("/dashboard/settings").text
    rows = {row.split("</td>")[0]: row for row in page.split("<tr><td>")[1:]}
    assert "second facteur" in rows[ADMIN]
    assert "second facteur" not in rows[MODERATOR]


def admin_codes(service: Service, clock: VirtualClock) -> list[str]:
    """Enable ADMIN's second factor; its recovery codes."""
    codes = totp.enable(service, user_id(service, ADMIN), SECRET, code_at(clock), "test")
    clock.advance(STEP * 3)
    return codes


def test_each_recovery_code_logs_in_once_in_place_of_the_apps_code(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    codes = admin_codes(service, clock)
    assert len(codes) == totp.RECOVERY_CODES == len(set(codes))
    with client_for(app) as (client, _):
        log_in(client, ADMIN, code=codes[0])
    with client_for(app) as (client, _):
        assert post_login(client, ADMIN, code=codes[0]).status_code == 401  # spent
        assert post_login(client, ADMIN, code="1234-5678-9012").status_code == 401  # not one
        log_in(client, ADMIN, code=codes[1].replace("-", " "))  # as typed from paper
    a = models.audit_log
    with service.engine.connect() as conn:
        used = conn.execute(
            select(a.c.details).where(a.c.action == "user_recovery_code_used").order_by(a.c.id)
        ).scalars()
        assert [json.loads(d)["left"] for d in used] == [9, 8]
        stored = set(conn.execute(select(recovery_codes.c.code_hash)).scalars())
    assert len(stored) == totp.RECOVERY_CODES
    assert not {code.replace("-", "") for code in codes} & stored  # digests only


def test_new_recovery_codes_void_the_old_ones_and_disabling_removes_them(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    old = admin_codes(service, clock)
    new = totp.renew_recovery_codes(service, user_id(service, ADMIN), "test")
    with client_for(app) as (client, _):
        assert post_login(client, ADMIN, code=old[0]).status_code == 401
        log_in(client, ADMIN, code=new[0])
    totp.disable(service, user_id(service, ADMIN), "test")
    with service.engine.connect() as conn:
        assert conn.execute(select(recovery_codes.c.code_hash)).first() is None
    with pytest.raises(OperationError, match="no second factor"):
        totp.renew_recovery_codes(service, user_id(service, ADMIN), "test")


def test_the_cli_shows_recovery_codes_once_enabled_and_on_request(
    tmp_path: Path, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = cli_setup(tmp_path, service, monkeypatch)
    enable = ["totp", "enable", ADMIN, "--config", str(config)]
    result = CliRunner().invoke(users_cli, enable, input=pyotp.TOTP(SECRET).now() + "\n")
    assert result.exit_code == 0, result.output
    shown = re.findall(r"^    (\d{4}-\d{4}-\d{4})$", result.output, re.MULTILINE)
    assert len(shown) == totp.RECOVERY_CODES
    renew = CliRunner().invoke(users_cli, ["totp", "codes", ADMIN, "--config", str(config)])
    assert renew.exit_code == 0, renew.output
    again = re.findall(r"^    (\d{4}-\d{4}-\d{4})$", renew.output, re.MULTILINE)
    assert len(again) == totp.RECOVERY_CODES
    assert not set(again) & set(shown)
    refused = CliRunner().invoke(users_cli, ["totp", "codes", VIEWER, "--config", str(config)])
    assert refused.exit_code == 1
    assert "no second factor" in refused.output


def stored_secret(service: Service, email: str) -> str:
    with service.engine.connect() as conn:
        secret = conn.execute(select(users.c.totp_secret).where(users.c.email == email)).scalar()
    assert isinstance(secret, str)
    return secret


def test_the_secret_is_sealed_with_a_key_kept_outside_the_database(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    enable_for_admin(service, clock)
    stored = stored_secret(service, ADMIN)
    assert stored.startswith("aes1:")
    assert SECRET not in stored
    key = Path(service.settings.web.totp_key_path)
    assert key.stat().st_mode & 0o777 == 0o600
    assert len(key.read_bytes()) == 32
    box = totp.box_of(service)
    assert box.open(stored, user_id(service, ADMIN)) == SECRET
    # Copied onto another account's row (an attacker who can write the table but has no
    # key), it does not open.
    with pytest.raises(SealError):
        box.open(stored, user_id(service, VIEWER))
    with client_for(app) as (client, _):
        log_in(client, ADMIN, code=code_at(clock))


def test_secrets_stored_before_sealing_work_and_are_sealed_when_the_service_starts(
    app: FastAPI, service: Service, clock: VirtualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    with service.engine.begin() as conn:  # as migration 0007 left them
        conn.execute(users.update().where(users.c.email == ADMIN).values(totp_secret=SECRET))
    with client_for(app) as (client, _):
        log_in(client, ADMIN, code=code_at(clock))
    cli._seal_second_factors(service)  # what `serve` and `worker` do at start
    assert "sealed 1 second-factor secret(s)" in capsys.readouterr().out
    assert stored_secret(service, ADMIN).startswith("aes1:")
    assert totp.seal_plain_secrets(service) == 0
    clock.advance(STEP)
    with client_for(app) as (client, _):
        log_in(client, ADMIN, code=code_at(clock))


def test_without_its_key_the_apps_codes_are_refused_and_recovery_codes_still_work(
    database_url: str, clock: VirtualClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sealed_with = Service(
        make_settings(database_url, web={"totp_key_path": str(tmp_path / "totp.key")}),
        make_engine(database_url),
        clock,
    )
    add_accounts(sealed_with)
    codes = totp.enable(sealed_with, user_id(sealed_with, ADMIN), SECRET, code_at(clock), "t")
    sealed_with.dispose()
    clock.advance(STEP * 3)
    lost = tmp_path / "lost" / "totp.key"
    service = Service(
        make_settings(database_url, web={"totp_key_path": str(lost)}),
        make_engine(database_url),
        clock,
    )
    try:
        app = dashboard_app(service)
        with client_for(app) as (client, _):
            assert post_login(client, ADMIN, code=code_at(clock)).status_code == 401
            assert f"{lost} is missing" in caplog.text
            log_in(client, ADMIN, code=codes[0])
        assert not lost.exists(), "opening must never make a new key"
    finally:
        service.dispose()


def test_a_key_file_that_cannot_be_made_stops_the_enrolment_not_the_service(
    database_url: str, clock: VirtualClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file-not-a-directory"
    blocker.write_text("")
    service = Service(
        make_settings(database_url, web={"totp_key_path": str(blocker / "totp.key")}),
        make_engine(database_url),
        clock,
    )
    try:
        add_accounts(service)
        with pytest.raises(OperationError, match="cannot create the key file"):
            totp.enable(service, user_id(service, ADMIN), SECRET, code_at(clock), "test")
        with service.engine.connect() as conn:
            assert conn.execute(select(users.c.totp_secret)).scalars().all() == [None] * 3
        with service.engine.begin() as conn:  # an older plain secret, to be sealed at start
            conn.execute(users.update().where(users.c.email == ADMIN).values(totp_secret=SECRET))
        cli._seal_second_factors(service)  # says why, and the service goes on starting
        assert "second factors not sealed: cannot create the key file" in capsys.readouterr().err
        assert stored_secret(service, ADMIN) == SECRET
    finally:
        service.dispose()
