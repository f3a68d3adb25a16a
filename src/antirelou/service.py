"""What every entry point shares: settings, the database, the clock and the replies to send.

Built once per process (serve, worker, replay, CLI command, test) and handed down.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from antirelou import models
from antirelou.budget import Caps
from antirelou.clock import Clock, SystemClock
from antirelou.db import make_engine
from antirelou.dbutil import insert_or_ignore
from antirelou.encoding import segment
from antirelou.killswitch import line_paused
from antirelou.money import to_micros
from antirelou.policy import LineRules
from antirelou.providers.android import PROVIDER as ANDROID
from antirelou.settings import LineSettings, Settings


@dataclass(frozen=True)
class ReplyPlan:
    """A line's reply, measured once: what it costs to send."""

    body: str
    encoding: str
    segments: int
    cost: int  # micro-euros


@dataclass
class Service:
    settings: Settings
    engine: Engine
    clock: Clock = field(default_factory=SystemClock)
    # The settings as read from the file and environment, before operators' overrides
    # (web/overrides.py) are applied to `settings`; kept so an override can be undone.
    file_settings: Settings = field(init=False)
    # SQLite with queued intake: the inbox's own database file, opened on first use
    # (inbox.py). None otherwise.
    inbox_engine: Engine | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.file_settings = self.settings

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> Service:
        return cls(settings, make_engine(settings.database_url), clock or SystemClock())

    def line(self, number: str) -> LineSettings | None:
        return self.settings.line(number)

    def rules(self, line: LineSettings) -> LineRules:
        return LineRules(line.reply_delay, line.reply_window, line.allowed_countries)

    def plan(self, line: LineSettings) -> ReplyPlan:
        return _plan(line.reply, self.settings.pricing.outbound_segment)

    def inbound_price(self, provider: str) -> int:
        """What receiving one part costs, in micros: [pricing] inbound, or the SIM plan's
        own price for the texts the Android gateway forwards."""
        if provider == ANDROID:
            return to_micros(self.settings.android.inbound_price)
        return to_micros(self.settings.pricing.inbound)

    @property
    def caps(self) -> Caps:
        budget = self.settings.budget
        return Caps(daily=to_micros(budget.daily_cap), pot=to_micros(budget.total))

    def local_day(self, line: LineSettings, when: datetime) -> str:
        return when.astimezone(line.zone).date().isoformat()

    def sync_lines(self) -> None:
        """Make sure every configured line has its row (pause state lives there)."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            for line in self.settings.lines:
                row = {"number": line.number, "provider": line.provider, "updated_at": now}
                conn.execute(insert_or_ignore(conn, models.lines, ["number"], paused=False, **row))

    def is_paused(self, number: str) -> bool:
        with self.engine.connect() as conn:
            return line_paused(conn, number)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.inbox_engine is not None:
            self.inbox_engine.dispose()


@functools.lru_cache(maxsize=64)  # asked for every reply; the reply text rarely changes
def _plan(reply: str, segment_price: float) -> ReplyPlan:
    measured = segment(reply)
    cost = measured.segments * to_micros(segment_price)
    return ReplyPlan(reply, measured.encoding.value, measured.segments, cost)
