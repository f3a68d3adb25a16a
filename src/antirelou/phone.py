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
    try:
        parsed = phonenumbers.parse(text if text.startswith("+") else "+" + digits, None)
    except phonenumbers.NumberParseException:
        return SenderNumber(raw, None, SenderKind.INVALID, None)
    if not phonenumbers.is_valid_number(parsed):
        return SenderNumber(raw, None, SenderKind.INVALID, None)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    region = phonenumbers.region_code_for_number(parsed)
    return SenderNumber(raw, e164, _kind_of(parsed), region)


def _kind_of(parsed: phonenumbers.PhoneNumber) -> SenderKind:
    number_type = phonenumbers.number_type(parsed)
    if number_type in _COSTLY_TYPES:
        return SenderKind.PREMIUM_RATE
    if number_type in _ANSWERABLE_TYPES:
        return SenderKind.ANSWERABLE
    return SenderKind.NOT_MOBILE


def mask(number: str) -> str:
    """+33612345678 -> +336••••••78: enough to tell numbers apart in logs, not to dial them."""
    if len(number) <= 6:
        return "•" * len(number)
    return number[:4] + "•" * (len(number) - 6) + number[-2:]
