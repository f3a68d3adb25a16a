"""`antirelou check` (readiness.py): what would hurt on the first raid night, said before
the number is handed out; and the webhook addresses for each provider's console."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from antirelou.cli import main
from antirelou.clock import VirtualClock
from antirelou.operations import record_backup, set_paused
from antirelou.readiness import Finding, Level, findings
from antirelou.service import Service
from antirelou.web import devices, totp
from antirelou.web.accounts import Role, create_user
from tests.dashboard_kit import config_for
from tests.helpers import LINE, make_settings
from tests.test_dashboard_totp import SECRET, code_at

READY: dict[str, Any] = {
    "web": {"second_factor_roles": ["moderator", "admin"]},
    "lines": [{"number": LINE, "provider": "twilio"}],
    "twilio": {"account_sid": "AC" + "0" * 32, "auth_token": "a-real-auth-token"},
    "alerts": {"webhook_url": "https://hooks.example.org/antirelou"},
}


def ready_service(service: Service, clock: VirtualClock, **overrides: Any) -> Service:
    """A Twilio line, an alert webhook, an admin with a second factor, and a backup made
    (SQLite)."""
    settings = make_settings(service.settings.database_url, **(READY | overrides))
    ready = Service(settings, service.engine, clock)
    ready.sync_lines()
    admin = create_user(ready, "admin@example.org", "correct horse battery", Role.ADMIN, "t")
    totp.enable(ready, admin, SECRET, code_at(clock), "test")
    with ready.engine.begin() as conn:  # she logged in once: her browser is trusted
        devices.trust_browser(conn, None, admin, clock.now())
    record_backup(ready, "/backups/antirelou.db", 300_000, 1, "cli:alice")
    return ready


def levels(found: list[Finding], level: Level) -> list[str]:
    return [f.text for f in found if f.level == level]


def test_a_ready_instance_has_nothing_to_fix_and_gets_its_webhook_addresses(
    service: Service, clock: VirtualClock
) -> None:
    found = findings(ready_service(service, clock))
    assert levels(found, Level.WARN) == levels(found, Level.FAIL) == []
    addresses = levels(found, Level.INFO)
    assert f"line {LINE}: Messaging, 'A message comes in' (POST): " \
        "https://decoy.example.org/webhooks/twilio/sms" in addresses  # fmt: skip
    assert any(a.endswith("https://decoy.example.org/webhooks/twilio/voice") for a in addresses)
    assert "alerts: webhook to hooks.example.org" in levels(found, Level.OK)


def test_a_fresh_instance_is_told_what_is_missing(service: Service) -> None:
    warnings = " | ".join(levels(findings(service), Level.WARN))
    assert "no admin can log in" in warnings
    assert "on the sandbox" in warnings
    assert "alerts: none configured" in warnings
    if service.engine.dialect.name == "sqlite":
        assert "backups: none made yet" in warnings


def test_an_operator_who_can_pause_without_a_second_factor_is_named(
    service: Service, clock: VirtualClock
) -> None:
    ready = ready_service(service, clock)
    mod = create_user(ready, "mod@example.org", "correct horse battery", Role.MODERATOR, "t")
    create_user(ready, "view@example.org", "correct horse battery", Role.VIEWER, "t")
    with ready.engine.begin() as conn:  # a link she has not opened yet trusts no browser
        devices.make_link(conn, mod, clock.now(), devices.LINK_LASTS)
    unguarded, never = levels(findings(ready), Level.WARN)
    assert "without a second factor" in unguarded
    assert "never logged in" in never
    for warning in (unguarded, never):
        assert "mod@example.org" in warning
        assert "admin@example.org" not in warning
        assert "view@example.org" not in warning  # a viewer cannot pause nor see numbers


def test_a_second_factor_left_optional_for_new_accounts_is_said(
    service: Service, clock: VirtualClock
) -> None:
    ready = ready_service(service, clock, web={"second_factor_roles": ["admin"]})
    (warning,) = levels(findings(ready), Level.WARN)
    assert "second_factor_roles leaves out moderator" in warning


def test_a_paused_line_and_a_spent_pot_are_said(service: Service, clock: VirtualClock) -> None:
    ready = ready_service(service, clock, budget={"daily_cap": 5.0, "total": 0.0})
    set_paused(ready, LINE, True, "test", "")
    found = findings(ready)
    assert any("paused" in w for w in levels(found, Level.WARN))
    (failure,) = levels(found, Level.FAIL)
    assert "the pot is spent" in failure


def test_the_command_exits_1_when_no_reply_could_be_sent(service: Service, tmp_path: Path) -> None:
    config = config_for(service, tmp_path)
    runner = CliRunner()
    fine = runner.invoke(main, ["check", "--config", str(config)])
    assert fine.exit_code == 0, fine.output
    assert "ok    database: reachable, schema up to date" in fine.output
    config.write_text(config.read_text() + "[budget]\ntotal = 0\n")
    spent = runner.invoke(main, ["check", "--config", str(config)])
    assert spent.exit_code == 1
    assert "FAIL  money: the pot is spent" in spent.output
