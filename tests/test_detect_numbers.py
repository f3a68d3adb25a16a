"""detect.numbers: blocks, kinds, virtual ranges and runs of consecutive sender numbers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from antirelou.detect.numbers import NumberShape, consecutive_run, shape


@pytest.mark.parametrize(
    ("e164", "kind", "country", "virtual"),
    [
        ("+33612345678", "mobile", "FR", False),  # French mobile, 06
        ("+33756123456", "mobile", "FR", False),  # French mobile, 07
        ("+33143123456", "fixed", "FR", False),  # Paris landline
        ("+33912345678", "voip", "FR", True),  # 09 non-geographic VoIP
        ("+33939000021", "voip", "FR", True),  # 09 39: where automated services live
        ("+337001234567890", "other", "FR", True),  # 07 00 M2M, 14 national digits
        ("+447911123456", "mobile", "GG", False),  # UK-numbering mobile (Guernsey range)
        ("+447400123456", "mobile", "GB", False),
        ("+445612345678", "voip", "GB", True),  # UK 056 VoIP
        ("+447012345678", "other", "GB", True),  # UK 070 personal number
        ("+4915123456789", "mobile", "DE", False),
        ("+4932123456789", "fixed", "DE", True),  # DE 032 national VoIP numbers
        ("+31851234567", "voip", "NL", True),
        ("+3197012345678", "mobile", "NL", True),  # NL 097 M2M
        ("+32471234567", "mobile", "BE", False),
        ("+41791234567", "mobile", "CH", False),
        ("+212612345678", "mobile", "MA", False),
        ("+14155552671", "mobile", "US", False),  # NANP: fixed-or-mobile counts as mobile
        ("+882123456789", "other", None, True),  # International Networks
        ("+8835100012345", "other", None, True),
    ],
)
def test_shape(e164: str, kind: str, country: str | None, virtual: bool) -> None:
    result = shape(e164)
    assert result == NumberShape(e164, e164[:-2], kind, country, virtual)


def test_block_is_the_number_without_its_last_two_digits() -> None:
    assert shape("+33612345678").block == "+336123456"
    assert shape("+33612345600").block == shape("+33612345699").block
    assert shape("+33612345700").block != shape("+33612345699").block


@pytest.mark.parametrize(
    "sender", ["SFR", "INFO-SMS", "36015", "", "+", "+33 6 12", "+336١٢٣٤٥٦٧٨"]
)
def test_shape_never_raises_on_odd_senders(sender: str) -> None:
    result = shape(sender)
    assert result.e164 == sender
    if not sender.lstrip("+").isascii() or not sender.lstrip("+").isdigit():
        assert result == NumberShape(sender, sender, "other", None, False)


def test_short_code_digits_are_other() -> None:
    assert shape("36015").kind == "other"
    assert not shape("36015").virtual


@pytest.mark.parametrize(
    ("numbers", "expected"),
    [
        ([], 0),
        (["+33612345678"], 1),
        (["+33612345678", "+33612345678"], 1),  # duplicates count once
        (["+33612345678", "+33612345679", "+33612345680"], 3),
        (["+33612345680", "+33612345678", "+33612345679"], 3),  # order does not matter
        (["+33612345678", "+33612345680"], 1),  # a gap breaks the run
        (["+33612345699", "+33612345700", "+33612345701"], 3),  # across a block boundary
        # two runs: the longest wins
        (["+33612345601", "+33612345602", "+33700000001", "+33700000002", "+33700000003"], 3),
        # a run of British VoIP numbers among French mobiles
        ([f"+4456123456{i:02d}" for i in range(10, 17)] + ["+33612345678", "+33698765432"], 7),
        (["SFR", "INFO", "+33612345678"], 1),  # names are ignored
        (["SFR"], 0),
    ],
)
def test_consecutive_run(numbers: list[str], expected: int) -> None:
    assert consecutive_run(numbers) == expected


def test_consecutive_run_keeps_prefixes_apart() -> None:
    # +1 999 999 9999 and +2 000 000 0000... are "consecutive" integers, not numbers
    assert consecutive_run(["+19999999999", "+20000000000"]) == 1
    # same digits, different lengths: not a run
    assert consecutive_run(["+3361234567", "+33612345678"]) == 1


def test_consecutive_run_of_a_rented_block() -> None:
    block = [f"+33939{n:06d}" for n in range(120_000, 120_250)]
    genuine = ["+33612345678", "+33687654321", "+447911123456"]
    assert consecutive_run(block[::2] + genuine) == 1  # every other number: no run
    assert consecutive_run(block + genuine) == 250
    assert consecutive_run(iter(block)) == 250  # any iterable


@given(st.sets(st.integers(min_value=0, max_value=10_000), max_size=200))
@settings(max_examples=200, deadline=None)
def test_consecutive_run_matches_a_naive_count(offsets: set[int]) -> None:
    numbers = [f"+336{12_000_000 + o:08d}" for o in offsets]
    ordered = sorted(offsets)
    best = run = 0
    for i, value in enumerate(ordered):
        run = run + 1 if i and value == ordered[i - 1] + 1 else 1
        best = max(best, run)
    assert consecutive_run(numbers) == best


@given(st.text(max_size=30))
@settings(max_examples=300, deadline=None)
def test_shape_never_raises(sender: str) -> None:
    result = shape(sender)
    assert result.kind in {"mobile", "voip", "fixed", "other"}
