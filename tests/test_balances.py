"""The provider balance watch (balances.py): the worker asks each provider how much money
is on its account, over real HTTP against the fake APIs, keeps the last answer for the
dashboard, and tells the operators once a day when it is under the floor."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from antirelou import alerts
from antirelou.balances import BalanceWatch, latest, providers
from antirelou.cli import _worker
from antirelou.clock import VirtualClock
from antirelou.providers.preflight import WITH_BALANCE, fetch_balance
from antirelou.service import Service
from tests.dashboard_kit import VIEWER, add_accounts, client_for, dashboard_app
from tests.fakes.twilio_api import FakeTwilio
from tests.fakes.vonage_api import FakeVonage
from tests.helpers import LINE, alert_payloads, make_settings


@pytest.fixture
def vonage() -> Iterator[FakeVonage]:
    with FakeVonage() as fake:
        yield fake


def on_vonage(
    service: Service, clock: VirtualClock, fake: FakeVonage, secret: str | None = None, **more: Any
) -> Service:
    section = {
        "api_key": fake.api_key,
        "api_secret": secret or fake.api_secret,
        "signature_secret": "sig-secret",
        "api_base_url": fake.base_url,
    }
    lines = [{"number": LINE, "provider": "vonage"}]
    settings = make_settings(service.settings.database_url, lines=lines, vonage=section, **more)
    watched = Service(settings, service.engine, clock)
    watched.sync_lines()
    return watched


def watching(service: Service) -> BalanceWatch:
    return BalanceWatch(service, fetch_balance, WITH_BALANCE)


def balance_alerts(service: Service) -> list[dict[str, Any]]:
    return alert_payloads(service, "provider_balance_low")


def test_the_balance_is_kept_asked_again_only_when_due_and_alerted_once_a_day(
    service: Service, clock: VirtualClock, vonage: FakeVonage
) -> None:
    watched = on_vonage(service, clock, vonage)  # daily cap 20 EUR: 10.28 is under it
    watch = watching(watched)
    watch()
    with watched.engine.connect() as conn:
        (kept,) = latest(conn)
    assert (kept.provider, kept.amount, kept.currency) == ("vonage", 10.28, "EUR")
    assert kept.asked_at == clock.now()
    assert kept.error is None
    (alert,) = balance_alerts(watched)
    assert alert | {"kind": "provider_balance_low"} == {
        "kind": "provider_balance_low",
        "provider": "vonage",
        "balance": 10.28,
        "currency": "EUR",
        "floor": 20.0,
    }
    assert alerts.subject(alert) == "only 10.28 EUR left on the vonage account: top it up"

    asked = len(vonage.calls)
    clock.advance(timedelta(minutes=5))
    watch()
    assert len(vonage.calls) == asked  # not due yet: nothing asked

    vonage.balance = 7.5
    clock.advance(timedelta(minutes=10))
    watch()
    with watched.engine.connect() as conn:
        assert latest(conn)[0].amount == 7.5
    assert len(balance_alerts(watched)) == 1  # the same day: told once


def test_no_alert_above_the_floor_and_an_explicit_floor_in_any_currency(
    service: Service, clock: VirtualClock, vonage: FakeVonage, caplog: pytest.LogCaptureFixture
) -> None:
    vonage.balance = 250.0
    watching(on_vonage(service, clock, vonage))()
    assert balance_alerts(service) == []

    with FakeTwilio() as twilio:  # bills in USD: no floor unless one is set
        section = {
            "account_sid": twilio.account_sid,
            "auth_token": twilio.auth_token,
            "api_base_url": twilio.base_url,
        }
        lines = [{"number": LINE, "provider": "twilio"}]
        for floor, alerted in ((None, 0), (20.0, 1)):
            budget = {"provider_balance_floor": floor} if floor else {}
            settings = make_settings(
                service.settings.database_url, lines=lines, twilio=section, budget=budget
            )
            clock.advance(timedelta(days=1))
            caplog.clear()
            watch = watching(Service(settings, service.engine, clock))
            for _ in range(2):
                watch()
                clock.advance(timedelta(hours=1))
            usd = [a for a in balance_alerts(service) if a["currency"] == "USD"]
            assert len(usd) == alerted
            unwatched = [r for r in caplog.records if "bills in USD" in r.getMessage()]
            assert len(unwatched) == (0 if floor else 1)  # said once, not at each question


def test_a_failed_question_is_recorded_and_logged_without_the_secret(
    service: Service,
    clock: VirtualClock,
    vonage: FakeVonage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    watching(on_vonage(service, clock, vonage))()
    clock.advance(timedelta(hours=1))
    refused = on_vonage(service, clock, vonage, secret="revoked-secret")
    with caplog.at_level(logging.WARNING, logger="antirelou.balances"):
        watching(refused)()  # no exception: the worker's tick goes on
    with service.engine.connect() as conn:
        (kept,) = latest(conn)
    assert kept.amount == 10.28  # the last balance stays, with its time
    assert kept.asked_at == clock.now() - timedelta(hours=1)
    assert kept.error is not None
    assert kept.error.startswith("credentials refused (HTTP 401)")
    assert kept.error_at == clock.now()
    assert "could not read vonage's balance" in caplog.text
    assert "revoked-secret" not in caplog.text + kept.error


def test_never_asked_when_switched_off_or_on_the_sandbox(
    service: Service, clock: VirtualClock, vonage: FakeVonage
) -> None:
    off = on_vonage(service, clock, vonage, budget={"provider_balance_every": "0s"})
    watching(off)()
    assert vonage.calls == []
    assert providers(service.settings, WITH_BALANCE) == []  # the sandbox has no account


def test_the_worker_asks_and_the_overview_shows_it(
    service: Service, clock: VirtualClock, vonage: FakeVonage
) -> None:
    watched = on_vonage(service, clock, vonage)
    worker = _worker(watched)
    try:
        worker.tick(force=True)
    finally:
        worker.close()
    assert [c.path for c in vonage.calls] == ["/account/get-balance"]
    add_accounts(watched)
    with client_for(dashboard_app(watched), VIEWER) as (client, _):
        page = client.get("/dashboard").text
        data = client.get("/api/overview").json()
    assert "10.28 EUR" in page
    (shown,) = data["provider_balances"]
    assert (shown["provider"], shown["amount"], shown["currency"]) == ("vonage", 10.28, "EUR")
