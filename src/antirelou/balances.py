"""The money on each provider's account, asked by the worker and shown to the operators.

The pot in antirelou's books is what the collective means to spend; what a raid drains is
the provider's account, topped up by hand. When the two drift apart (a top-up forgotten,
another project on the same account, the provider's own fees), the caps say "go on" while
the provider is about to refuse every reply. So the worker asks each provider for its
balance every `[budget] provider_balance_every` (one read-only request, providers/preflight
.py), keeps the last answer in `provider_balances`, and raises an alert, once a day per
provider, when the balance is under `[budget] provider_balance_floor` (by default the daily
cap, when the provider bills in the pricing currency: less than one day of replies).

A question that fails is recorded and logged, never raised: the worker's tick goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from antirelou import alerts, models
from antirelou.db import writing
from antirelou.dbutil import dialect_insert
from antirelou.money import MICROS, to_micros
from antirelou.providers.base import Balance, NoBalance
from antirelou.service import Service
from antirelou.settings import Settings

log = logging.getLogger(__name__)

# How to ask a provider (providers/preflight.fetch_balance, given by the entry point: the
# core never imports a provider's adapter).
Fetch = Callable[[Settings, str], Balance]


@dataclass(frozen=True)
class ProviderBalance:
    """The last answer of one provider, and the last failure if it came after it."""

    provider: str
    amount: float | None
    currency: str | None
    asked_at: datetime | None
    error: str | None
    error_at: datetime | None


class BalanceWatch:
    """A worker chore: ask every provider a line uses that has a balance to give (`able`),
    at most every provider_balance_every."""

    def __init__(self, service: Service, fetch: Fetch, able: frozenset[str]) -> None:
        self.service = service
        self._fetch = fetch
        self._providers = providers(service.settings, able)
        self._last: datetime | None = None
        self._no_floor: set[str] = set()

    def __call__(self) -> None:
        every = self.service.settings.budget.provider_balance_every
        now = self.service.clock.now()
        if not every or (self._last is not None and now - self._last < every):
            return
        self._last = now
        for provider in self._providers:
            self._ask(provider, now)

    def _ask(self, provider: str, now: datetime) -> None:
        try:
            balance = self._fetch(self.service.settings, provider)
        except NoBalance as exc:
            log.warning("could not read %s's balance: %s", provider, exc)
            with writing(self.service.engine) as conn:
                _save(conn, provider, {"error": str(exc), "error_at": now})
            return
        except Exception:  # a bug of ours, or of an adapter: said, and asked again later
            log.exception("asking %s for its balance failed", provider)
            return
        values = {
            "amount_micros": to_micros(balance.amount),
            "currency": balance.currency,
            "asked_at": now,
            "error": None,
            "error_at": None,
        }
        with writing(self.service.engine) as conn:
            _save(conn, provider, values)
            self._maybe_alert(conn, provider, balance, now)

    def _maybe_alert(
        self, conn: Connection, provider: str, balance: Balance, now: datetime
    ) -> None:
        floor = low_water(self.service.settings, balance.currency)
        if floor is None:
            if provider not in self._no_floor:  # said once, not every 15 minutes
                self._no_floor.add(provider)
                log.warning(
                    "%s bills in %s, not in the pricing currency: no alert will say its "
                    "balance runs low unless [budget] provider_balance_floor is set",
                    provider,
                    balance.currency,
                )
            return
        if balance.amount >= floor:
            return
        day = self.service.local_day(self.service.settings.lines[0], now)
        payload = {
            "provider": provider,
            "balance": balance.amount,
            "currency": balance.currency,
            "floor": floor,
        }
        alerts.enqueue(conn, "provider_balance_low", f"balance:{provider}:{day}", payload, now)


def providers(settings: Settings, able: frozenset[str]) -> list[str]:
    """The providers the lines use that can say how much money they hold."""
    return [provider for provider in settings.lines_by_provider if provider in able]


def low_water(settings: Settings, currency: str) -> float | None:
    """The balance under which the operators are told; None: none applies to `currency`."""
    floor = settings.budget.provider_balance_floor
    if floor is not None:
        return floor
    if currency == settings.pricing.currency.upper():
        return settings.budget.daily_cap
    return None


def _save(conn: Connection, provider: str, values: dict[str, object]) -> None:
    statement = dialect_insert(conn, models.provider_balances).values(provider=provider, **values)
    conn.execute(statement.on_conflict_do_update(index_elements=["provider"], set_=values))


def latest(conn: Connection) -> list[ProviderBalance]:
    """The last answer of every provider asked so far, by name."""
    b = models.provider_balances
    rows = conn.execute(select(b).order_by(b.c.provider)).all()
    return [
        ProviderBalance(
            row.provider,
            None if row.amount_micros is None else row.amount_micros / MICROS,
            row.currency,
            row.asked_at,
            row.error,
            row.error_at,
        )
        for row in rows
    ]
