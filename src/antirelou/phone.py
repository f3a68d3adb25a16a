"""Phone numbers: normalising senders and saying which of them may ever get a reply.

A reply costs money and lands on someone's phone, so it only goes to a real mobile-capable
number in a country the line serves: never to short codes (premium services bill *us*),
alphanumeric senders (nobody to answer), premium-rate or shared-cost numbers, or anything
phonenumbers cannot vouch for.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

_ANSWERABLE_TYPES = {
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
}
_COSTLY_TYPES = {
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.UAN,
    PhoneNumberType.TOLL_FREE,
}
_DIALABLE = re.compile(r"^\+?[\d\s().-]+$")


class SenderKind(enum.StrEnum):
    ANSWERABLE = "answerable"
    ALPHANUMERIC = "alphanumeric_sender"
    SHORT_CODE = "short_code"
    PREMIUM_RATE = "premium_rate"
    NOT_MOBILE = "not_mobile"
    INVALID = "invalid_number"


@dataclass(frozen=True)
class SenderNumber:
    """What we know about who sent a text."""

    raw: str
    e164: str | None  # normalised form, when it is a valid international number
    kind: SenderKind
    country: str | None  # ISO region code, e.g. "FR"

    @property
    def key(self) -> str:
        """The identity used for once-per-sender: E.164 when known, else the raw text."""
        return self.e164 or self.raw.strip()


@functools.lru_cache(maxsize=1 << 14)  # pure, and raiders and regulars text again and again
def classify(raw: str) -> SenderNumber:
    """Normalise a sender as given by a provider and say whether it can be answered."""
    text = raw.strip()
    if not _DIALABLE.match(text):
        return SenderNumber(raw, None, SenderKind.ALPHANUMERIC, None)
    digits = re.sub(r"\D", "", text)
    if not text.startswith("+") and len(digits) <= 8:
        return SenderNumber(raw, None, SenderKind.SHORT_CODE, None)
    facts = number_facts(text if text.startswith("+") else "+" + digits)
    if facts is None or not facts.valid:
        return SenderNumber(raw, None, SenderKind.INVALID, None)
    return SenderNumber(raw, facts.e164, _kind_of(facts.number_type), facts.region)


@dataclass(frozen=True)
class NumberFacts:
    """What phonenumbers says about a number in international form."""

    e164: str
    region: str | None  # region_code_for_number: "FR"; "001" non-geographic; None unknown
    number_type: int  # a PhoneNumberType
    valid: bool  # phonenumbers.is_valid_number


@functools.lru_cache(maxsize=1 << 16)
def number_facts(international: str) -> NumberFacts | None:
    """Parse, region, type and validity of "+33612345678", worked out once (None when it
    does not parse). The policy (classify) and the raid detectors (detect.numbers.shape) both
    need them for every new sender, and each costs a walk over phonenumbers' patterns: a raid
    is mostly new senders, so the cache rarely helps the first time and sharing it does."""
    try:
        parsed = phonenumbers.parse(international, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed)
    return NumberFacts(
        e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        region=region,
        number_type=phonenumbers.number_type(parsed),
        valid=region is not None and phonenumbers.is_valid_number_for_region(parsed, region),
    )


def _kind_of(number_type: int) -> SenderKind:
    if number_type in _COSTLY_TYPES:
        return SenderKind.PREMIUM_RATE
    if number_type in _ANSWERABLE_TYPES:
        return SenderKind.ANSWERABLE
    return SenderKind.NOT_MOBILE


_NUMBER_IN_TEXT = re.compile(r"\+?\d{8,15}")


def mask_numbers(text: str) -> str:
    """Every phone number a text quotes, masked (a provider's error message may quote the
    recipient's): for what goes to logs and alerts."""
    return _NUMBER_IN_TEXT.sub(lambda found: mask(found.group()), text)


def mask(number: str) -> str:
    """+33612345678 -> +336••••••78: enough to tell numbers apart in logs, not to dial them."""
    if len(number) <= 6:
        return "•" * len(number)
    return number[:4] + "•" * (len(number) - 6) + number[-2:]
