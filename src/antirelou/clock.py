"""Where time comes from, and how an instant is written as text. Live code gets the system
clock; replays and tests a virtual one.

Every module that needs "now" takes a Clock, so the replay runs the very same code as the
live service without sleeping.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


def utc_iso(when: datetime, sep: str) -> str:
    """`when` in UTC, as `isoformat(sep, "microseconds")` writes it, without its "+00:00".

    Built by `%`: 0.40 µs against isoformat's 0.58 on Debian's Python (C's isoformat goes
    through the slower PyUnicode_FromFormat), for the dozen instants the database and the
    evidence write for each text."""
    u = when.astimezone(UTC)
    return "%04d-%02d-%02d%s%02d:%02d:%02d.%06d" % (  # noqa: UP031 (an f-string: 0.66 µs)
        u.year,
        u.month,
        u.day,
        sep,
        u.hour,
        u.minute,
        u.second,
        u.microsecond,
    )


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a virtual clock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = max(self._now, when.astimezone(UTC))

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta
