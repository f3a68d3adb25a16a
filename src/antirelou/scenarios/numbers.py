"""Sender numbers for scenarios: real-looking, valid where they are meant to be answerable.

Every generated number is checked with phonenumbers, so a "French mobile" really is one for
the service's own classifier, and a "foreign" or "premium-rate" number really is valid and of
that type (it is refused for what it is, not because it is malformed).
"""

from __future__ import annotations

import random

import phonenumbers
from phonenumbers import PhoneNumberType

# Mobile ranges (national significant number prefixes) people actually carry.
FR_MOBILE_PREFIXES = ("6", "7")
# Foreign mobiles a French decoy number sees: French-speaking neighbours, the Maghreb, and the
# countries online SMS services rent numbers from.
FOREIGN_MOBILES = {
    "BE": ("+32", "4", 9),
    "CH": ("+41", "7", 9),
    "LU": ("+352", "6", 9),
    "DE": ("+49", "15", 11),
    "GB": ("+44", "7", 10),
    "ES": ("+34", "6", 9),
    "MA": ("+212", "6", 9),
    "DZ": ("+213", "5", 9),
    "TN": ("+216", "2", 8),
    "US": ("+1", "", 10),
    "CA": ("+1", "", 10),
}
_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
_COSTLY_TYPES = {PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST}


def _typed(number: str, region: str | None, types: set[int]) -> bool:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    if not phonenumbers.is_valid_number(parsed):
        return False
    if region is not None and phonenumbers.region_code_for_number(parsed) != region:
        return False
    return phonenumbers.number_type(parsed) in types


class Numbers:
    """Draws distinct sender numbers; never hands out the same number twice."""

    def __init__(self, rng: random.Random, reserved: tuple[str, ...] = ()) -> None:
        self.rng = rng
        self.used: set[str] = set(reserved)

    def _take(self, number: str) -> bool:
        if number in self.used:
            return False
        self.used.add(number)
        return True

    def _digits(self, count: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(count))

    def fr_mobile(self) -> str:
        """A French mobile (+336 / +337), anywhere in the range: people's own phones."""
        while True:
            lead = self.rng.choices(FR_MOBILE_PREFIXES, weights=(7, 3))[0]
            number = f"+33{lead}{self._digits(8)}"
            if _typed(number, "FR", _MOBILE_TYPES) and self._take(number):
                return number

    def fr_voip_run(self, length: int) -> list[str]:
        """`length` consecutive French 09 (VoIP) numbers: what an online number service rents."""
        while True:
            start = int(f"339{self.rng.choice('45789')}{self._digits(7)}")
            run = [f"+{start + i}" for i in range(length)]
            if all(_typed(n, "FR", {PhoneNumberType.VOIP}) for n in run) and all(
                n not in self.used for n in run
            ):
                self.used.update(run)
                return run

    def foreign_mobile(self, region: str | None = None) -> str:
        regions = sorted(FOREIGN_MOBILES)
        chosen = region or self.rng.choice(regions)
        code, lead, size = FOREIGN_MOBILES[chosen]
        while True:
            if chosen in ("US", "CA"):
                area = self.rng.choice(
                    ("212", "415", "646", "917") if chosen == "US" else ("514", "438", "418", "581")
                )
                body = f"{area}{self.rng.randint(2, 9)}{self._digits(6)}"
            else:
                body = lead + self._digits(size - len(lead))
            number = code + body
            if _typed(number, chosen, _MOBILE_TYPES) and self._take(number):
                return number

    def premium_rate(self) -> str:
        """A French 089x / 081x number: premium rate or shared cost (it would bill us)."""
        while True:
            number = f"+33{self.rng.choice(('89', '89', '81'))}{self._digits(7)}"
            if _typed(number, "FR", _COSTLY_TYPES) and self._take(number):
                return number

    def short_code(self) -> str:
        """A French SMS short code (5 digits, 3xxxx-8xxxx), as providers hand it over."""
        while True:
            number = f"{self.rng.choice('345678')}{self._digits(4)}"
            if self._take(number):
                return number

    def alphanumeric(self) -> str:
        names = (
            "LaPoste", "Colissimo", "AMELI", "Orange", "SFR", "FreeMobile", "Bouygues",
            "Doctolib", "UBER", "INFO", "CAF", "SNCF", "Chronopost", "DPD", "Vinted",
            "Leboncoin", "BNP", "CreditAgri", "Deliveroo", "Impots",
        )  # fmt: skip
        while True:
            name = self.rng.choice(names)
            candidate = name if name not in self.used else f"{name}{self.rng.randint(1, 99)}"
            if self._take(candidate):
                return candidate


def is_valid_fr_mobile(number: str) -> bool:
    return _typed(number, "FR", _MOBILE_TYPES)
