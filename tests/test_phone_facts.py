"""number_facts: what classify (the policy) and shape (the detectors) share, worked out once,
must be exactly what phonenumbers says of the number."""

from __future__ import annotations

import phonenumbers
import pytest

from antirelou.detect.numbers import shape
from antirelou.phone import classify, number_facts

NUMBERS = [
    "+33612345678",  # FR mobile
    "+33939000021",  # FR 09 VoIP
    "+33899123456",  # FR premium rate
    "+33697289663",  # FR 06 range phonenumbers does not allocate: invalid
    "+14155550123",  # US, FIXED_LINE_OR_MOBILE, a multi-region calling code
    "+12042345678",  # CA, same calling code
    "+447911123456",  # GB mobile
    "+447624123456",  # IM: its own region under +44
    "+80012345678",  # non-geographic (+800, region 001)
    "+88213412345",  # International Networks
    "+3312",  # too short
]


@pytest.mark.parametrize("number", NUMBERS)
def test_facts_are_phonenumbers_own(number: str) -> None:
    parsed = phonenumbers.parse(number, None)
    facts = number_facts(number)
    assert facts is not None
    assert facts.valid == phonenumbers.is_valid_number(parsed)
    assert facts.number_type == phonenumbers.number_type(parsed)
    assert facts.region == phonenumbers.region_code_for_number(parsed)
    assert facts.e164 == phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@pytest.mark.parametrize("text", ["+not a number", "+999123456"])  # +999: no such code
def test_unparsable_text_has_no_facts(text: str) -> None:
    assert number_facts(text) is None


@pytest.mark.parametrize("number", NUMBERS)
def test_classify_and_shape_read_the_same_facts(number: str) -> None:
    sender = classify(number)
    facts = number_facts(number)
    assert facts is not None
    assert (sender.e164 is not None) == facts.valid
    if sender.e164 is not None:
        assert sender.country == facts.region
        expected = facts.region if facts.region not in (None, "001", "ZZ") else None
        assert shape(sender.e164).country == expected
