"""Human durations: parsed, refused with a reason, never an overflow."""

from __future__ import annotations

from datetime import timedelta

import pytest

from antirelou.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0s", timedelta(0)), ("90", timedelta(seconds=90)), ("1h30m", timedelta(minutes=90))],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["86400000000000", "900000000w", "9" * 400])
def test_a_duration_past_what_a_datetime_counts_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="duration too long"):
        parse_duration(text)


def test_a_longest_duration_is_enforced_and_named() -> None:
    day = timedelta(days=1)
    assert parse_duration("24h", longest=day) == day
    with pytest.raises(ValueError, match=r"at most 1d"):
        parse_duration("25h", longest=day)
    assert format_duration(parse_duration("1d2h")) == "1d2h"
