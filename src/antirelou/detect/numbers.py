"""The shape of sender numbers: blocks, kinds, virtual ranges and runs of consecutive numbers.

A genuine man texts from his own mobile. Raiders who send "a thousand at a time" do it from
numbers that are cheap to get in bulk: VoIP and other virtual numbers rented by the hundred
(which come in *runs* of consecutive numbers, hence the 100-number ``block``), M2M SIM ranges,
and foreign numbers. None of this proves a raid on its own: the detectors weigh it with the
other signals. Everything here is pure and cached; the input is an E.164 string ("+33612345678").

``kind`` comes from phonenumbers' metadata ("mobile", "voip", "fixed", "other"). Numbers that
phonenumbers types FIXED_LINE_OR_MOBILE (the whole of North America, where the prefix cannot
tell) count as "mobile": they can text, and calling them "fixed" would wrongly make them odd.

``virtual`` is true for phonenumbers' VOIP and PERSONAL_NUMBER types (e.g. France 09, UK 056,
Netherlands 085/091, UK 070 "personal numbers"), and for the ranges in ``VIRTUAL_PREFIXES`` that
phonenumbers types otherwise or not at all.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

from antirelou.phone import number_facts

__all__ = ["VIRTUAL_PREFIXES", "NumberShape", "consecutive_run", "shape"]

BLOCK_DIGITS = 2  # a block is the number without its last 2 digits: 100 consecutive numbers

_KINDS = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "mobile",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.FIXED_LINE: "fixed",
}
_VIRTUAL_TYPES = {PhoneNumberType.VOIP, PhoneNumberType.PERSONAL_NUMBER}

# E.164 prefixes of virtual or machine ranges that phonenumbers does not type as VOIP.
VIRTUAL_PREFIXES: dict[str, str] = {
    # France, 07 00 + 10 digits: 14-digit numbers ARCEP reserved for M2M (machine-to-machine)
    # SIMs in 2012; no person has one, and phonenumbers rejects them as invalid.
    "+33700": "FR 07 00: M2M (14-digit) numbers",
    # France, 09: non-geographic numbers (internet-box VoIP lines, online SMS/VoIP services).
    # phonenumbers already types them VOIP; listed so the rule holds even for numbers its
    # metadata does not know yet.
    "+339": "FR 09: non-geographic VoIP numbers",
    # Germany, 032: "nationale Teilnehmerrufnummern", location-independent numbers sold by VoIP
    # providers; phonenumbers types them FIXED_LINE.
    "+4932": "DE 032: national (VoIP) subscriber numbers",
    # Netherlands, 097: numbers the regulator (ACM) set aside for M2M; phonenumbers types the
    # 11-digit ones MOBILE.
    "+3197": "NL 097: M2M numbers",
    # +882 / +883, ITU "International Networks": global M2M and travel SIMs and virtual numbers,
    # with no country; phonenumbers knows few of them.
    "+882": "International Networks (+882)",
    "+883": "International Networks (+883)",
}


@dataclass(frozen=True)
class NumberShape:
    """What a sender number looks like, for the raid detectors."""

    e164: str
    block: str  # e164 without its last 2 digits: the block of 100 numbers it belongs to
    kind: str  # "mobile" | "voip" | "fixed" | "other"
    country: str | None  # ISO region ("FR"), None when unknown or non-geographic
    virtual: bool  # VoIP, personal-number, M2M or other virtual range


def _digits(number: str) -> str | None:
    """The digits of "+33612345678" (or "33612345678"), None if it is not a plain number."""
    digits = number[1:] if number.startswith("+") else number
    if digits.isascii() and digits.isdigit() and 4 <= len(digits) <= 17:
        return digits
    return None


@functools.lru_cache(maxsize=1 << 16)
def shape(e164: str) -> NumberShape:
    """The shape of a sender number. Never raises: an unparsable sender (an alphanumeric name,
    a short code) is "other", not virtual, and its block is the text itself, so it never shares
    a block with anything else."""
    digits = _digits(e164)
    if digits is None:
        return NumberShape(e164, e164, "other", None, False)
    number = "+" + digits
    block = number[:-BLOCK_DIGITS]
    virtual = any(number.startswith(prefix) for prefix in VIRTUAL_PREFIXES)
    facts = number_facts(number)
    if facts is None:
        return NumberShape(e164, block, "other", None, virtual)
    number_type, region = facts.number_type, facts.region
    country = region if region and region not in ("001", "ZZ") else None
    return NumberShape(
        e164=e164,
        block=block,
        kind=_KINDS.get(number_type, "other"),
        country=country,
        virtual=virtual or number_type in _VIRTUAL_TYPES,
    )


def _calling_code(digits: str) -> str:
    """The country calling code at the start of the digits ("33" for 336...), or the first one."""
    for size in (1, 2, 3):
        if int(digits[:size]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return digits[:size]
    return digits[:1]


def consecutive_run(numbers: Iterable[str]) -> int:
    """Length of the longest run of numerically consecutive numbers among distinct senders.

    Numbers are compared within the same prefix (the same country calling code and the same
    length), so +33612345699 and +33612345700 are consecutive (a run may cross a block
    boundary) but a +1 and a +33 number never are. Duplicates count once; senders that are not
    plain numbers are ignored. O(n): each run is walked once from its first number.
    """
    groups: dict[tuple[str, int], set[int]] = {}
    for number in numbers:
        digits = _digits(number)
        if digits is not None:
            groups.setdefault((_calling_code(digits), len(digits)), set()).add(int(digits))
    best = 0
    for values in groups.values():
        for value in values:
            if value - 1 in values:
                continue  # not the start of a run
            length = 1
            while value + length in values:
                length += 1
            best = max(best, length)
    return best
