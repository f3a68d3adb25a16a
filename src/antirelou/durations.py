"""Human durations in configuration: "0s", "90s", "1h", "1h30m", "30d"."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(
    value: str | int | float | timedelta, longest: timedelta | None = None
) -> timedelta:
    """Parse "1h30m" style durations; a bare number is seconds. ValueError when it is not a
    duration, or longer than `longest` (or than a datetime can count)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        return _seconds(value, value, longest)
    text = value.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return _seconds(float(text), value, longest)
    if not text or _PART.sub("", text):
        raise ValueError(f"not a duration: {value!r} (use e.g. 0s, 90s, 1h, 1h30m, 30d)")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
    return _seconds(seconds, value, longest)


def _seconds(seconds: float, value: object, longest: timedelta | None) -> timedelta:
    try:
        duration = timedelta(seconds=seconds)
    except (OverflowError, ValueError):  # past 999,999,999 days, or infinite
        duration = None
    if duration is None or (longest is not None and duration > longest):
        limit = f" (at most {format_duration(longest)})" if longest is not None else ""
        raise ValueError(f"duration too long: {value!r}{limit}")
    return duration


def format_duration(delta: timedelta) -> str:
    """The shortest "1d2h" form of a duration, for messages and the CLI."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
