"""Human durations in configuration: "0s", "90s", "1h", "1h30m", "30d"."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Parse "1h30m" style durations; a bare number is seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        return _seconds(value, value)
    text = value.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return _seconds(float(text), value)
    if not text or _PART.sub("", text):
        raise ValueError(f"not a duration: {value!r} (use e.g. 0s, 90s, 1h, 1h30m, 30d)")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
    return _seconds(seconds, value)


def _seconds(seconds: float, value: object) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except (OverflowError, ValueError):  # past 999,999,999 days, or infinite
        raise ValueError(f"duration too long: {value!r}") from None


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
