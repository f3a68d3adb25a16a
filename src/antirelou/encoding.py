"""SMS encoding and segmentation: how many parts a reply costs, and how to make it cheaper.

An SMS is sent in GSM-7 (3GPP TS 23.038 default alphabet plus its extension table) when every
character of the text fits, and in UCS-2 (UTF-16) otherwise. A single character outside GSM-7,
such as a typographic apostrophe or a non-breaking space, switches the whole text to UCS-2 and
shrinks a part from 160 to 70 units, so a French reply can cost two or three times as much as
the same words typed plainly. This module counts parts exactly as operators pack them and
proposes a GSM-7-only rewrite, so the operator of the service can see and avoid that cost.

Everything here is a pure function of its arguments: no I/O, no configuration.
"""

from __future__ import annotations

import enum
import math
import re
import unicodedata
from dataclasses import dataclass

__all__ = ["Encoding", "Segmentation", "cost", "gsm7_rewrite", "segment"]


class Encoding(enum.StrEnum):
    """The two data coding schemes an SMS text can travel in."""

    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True)
class Segmentation:
    """How a text travels: its encoding, its size and the number of parts billed.

    ``units`` are GSM-7 septets (an extension character takes two: escape plus code) or UCS-2
    code units (UTF-16: a character outside the Basic Multilingual Plane takes two).
    ``per_segment`` is the capacity that applied: 160/70 for a single part, 153/67 per part of
    a multipart message, whose user data header eats the difference. The empty text is one
    segment, because a provider still bills one message. ``offending`` lists, in order of first
    appearance, the distinct characters that forced UCS-2 (empty for GSM-7).
    """

    encoding: Encoding
    units: int
    segments: int
    per_segment: int
    offending: tuple[str, ...]


# GSM 03.38 basic character set, in code order (0x00-0x7F). 0x1B is the escape to the
# extension table, not a character a text can contain, so it is left out. 0x09 is the capital
# C-cedilla: lowercase ç is NOT in the alphabet, whatever some handsets display.
_GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# Extension table: each of these is sent as escape + code, so it costs two septets.
_GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

_GSM7: frozenset[str] = _GSM7_BASIC | _GSM7_EXTENSION

# Capacities: a single part carries 140 octets; a multipart one loses 6 octets to the
# concatenation user data header.
_GSM7_SINGLE = 160
_GSM7_MULTI = 153
_UCS2_SINGLE = 70
_UCS2_MULTI = 67


def _is_gsm7(char: str) -> bool:
    return char in _GSM7


def _septets(char: str) -> int:
    return 2 if char in _GSM7_EXTENSION else 1


def _utf16_units(char: str) -> int:
    # Python strings hold code points; anything above the BMP is a surrogate pair on the wire.
    return 2 if ord(char) > 0xFFFF else 1


def _pack(widths: list[int], capacity: int) -> int:
    """Count the parts needed to pack items of the given widths, never splitting an item.

    A plain division would be wrong: an escape pair (GSM-7) or a surrogate pair (UCS-2) that
    does not fit in the room left in a part moves whole to the next one, leaving a hole.
    """
    parts = 1
    used = 0
    for width in widths:
        if used + width > capacity:
            parts += 1
            used = 0
        used += width
    return parts


def segment(text: str) -> Segmentation:
    """Return the encoding a text will travel in and how many parts it will be billed as.

    The text is counted exactly as given (no normalisation), because that is what the provider
    receives. A text that fits in one part uses the single-part capacity (160/70); otherwise
    parts are packed at 153/67 without splitting escape or surrogate pairs.
    """
    offending = tuple(dict.fromkeys(char for char in text if not _is_gsm7(char)))
    if offending:
        encoding = Encoding.UCS2
        widths = [_utf16_units(char) for char in text]
        single, multi = _UCS2_SINGLE, _UCS2_MULTI
    else:
        encoding = Encoding.GSM7
        widths = [_septets(char) for char in text]
        single, multi = _GSM7_SINGLE, _GSM7_MULTI
    units = sum(widths)
    if units <= single:
        return Segmentation(encoding, units, 1, single, offending)
    return Segmentation(encoding, units, _pack(widths, multi), multi, offending)


def parts(text: str) -> int:
    """How many parts a received text is billed as (providers bill inbound texts per part,
    as outbound ones). Every text goes through here: one that fits in 70 UTF-16 units is one
    part whatever its encoding, found without looking at each character."""
    if len(text.encode("utf-16-le")) <= 2 * _UCS2_SINGLE:
        return 1
    return segment(text).segments


# Characters outside GSM-7 with a better lookalike than their Unicode decomposition gives (or
# none at all: NFKD leaves quotes, dashes and ligatures like œ alone).
_LOOKALIKES: dict[str, str] = {
    "\u2019": "'",  # ’ right single quotation mark, the French typographic apostrophe
    "\u2018": "'",  # ‘
    "\u201a": "'",  # ‚
    "\u201b": "'",  # ‛
    "\u2032": "'",  # ′ prime
    "\u00b4": "'",  # ´ acute accent used as an apostrophe
    "`": "'",
    "\u201c": '"',  # “
    "\u201d": '"',  # ”
    "\u201e": '"',  # „
    "\u201f": '"',  # ‟
    "\u2033": '"',  # ″ double prime
    "\u00ab": '"',  # «
    "\u00bb": '"',  # »
    "\u2039": "'",  # ‹
    "\u203a": "'",  # ›
    "\u2026": "...",  # …
    "\u2010": "-",  # ‐ hyphen
    "\u2011": "-",  # ‑ non-breaking hyphen
    "\u2012": "-",  # ‒ figure dash
    "\u2013": "-",  # – en dash
    "\u2014": "-",  # — em dash
    "\u2015": "-",  # ― horizontal bar
    "\u2212": "-",  # − minus sign
    "\u2022": "-",  # • bullet
    "\u2044": "/",  # ⁄ fraction slash (what NFKD makes of ½)
    "\u00a0": " ",  # no-break space
    "\u202f": " ",  # narrow no-break space
    "\u2009": " ",  # thin space
    "\t": " ",
    "\u0153": "oe",  # œ
    "\u0152": "OE",  # Œ
    "\u00e7": "c",  # ç (the capital Ç is GSM-7 and is kept)
    "\u00e2": "a",  # â
    "\u00ea": "e",  # ê
    "\u00ee": "i",  # î
    "\u00f4": "o",  # ô
    "\u00fb": "u",  # û
    "\u00eb": "e",  # ë
    "\u00ef": "i",  # ï
    "\u00e1": "a",  # á
    "\u00ed": "i",  # í
    "\u00f3": "o",  # ó
    "\u00fa": "u",  # ú
}

# Zero-width and other invisible format characters: dropping them loses nothing a reader sees.
_INVISIBLE_CATEGORIES = frozenset({"Cf"})
# Emoji skin-tone modifiers: the emoji they follow already became '?', one is enough.
_SKIN_TONES = frozenset(chr(code) for code in range(0x1F3FB, 0x1F400))

# French typography puts a (narrow) no-break space inside guillemets. Straight quotes hug their
# text, so those spaces, plain ones included, go with the guillemets.
_SPACES = "[ \u00a0\u202f\u2009]*"
_OPENING_GUILLEMET = re.compile("\u00ab" + _SPACES)
_CLOSING_GUILLEMET = re.compile(_SPACES + "\u00bb")


def _fallback(char: str) -> str:
    """Rewrite a character with no listed lookalike: decompose it, keep what GSM-7 can carry.

    NFKD splits accented letters into base plus combining marks (Â -> A + ^) and compatibility
    forms into plain ones (ﬁ -> fi, fullwidth Ａ -> A); the marks are dropped and whatever is
    still not GSM-7 becomes '?', so the reader sees that something was there.
    """
    if unicodedata.category(char) in _INVISIBLE_CATEGORIES or char in _SKIN_TONES:
        return ""
    base = [part for part in unicodedata.normalize("NFKD", char) if not _is_mark(part)]
    if not base:
        return ""  # a stray combining mark with nothing to sit on
    mapped = [part if _is_gsm7(part) else _LOOKALIKES.get(part, "?") for part in base]
    if all(part == "?" for part in mapped):
        return "?"  # one unknown character, one '?' (not one per jamo of a Hangul syllable)
    return "".join(mapped)


def _is_mark(char: str) -> bool:
    return unicodedata.category(char).startswith("M")


def gsm7_rewrite(text: str) -> str:
    """Propose a GSM-7-only version of a text, so that it is billed at 160/153 per part.

    A text that is already GSM-7 is returned unchanged: nothing is gained by touching it.
    Otherwise the text is first composed (NFC), so that a decomposed ``e`` + acute becomes the
    GSM-7 ``é`` instead of losing its accent; characters that GSM-7 has (é è à ù É Ç Ä Ö Ñ Ü ß
    ...) are kept; typographic quotes, dashes, ellipses, ligatures and non-breaking spaces get
    their plain lookalikes; anything else is decomposed with its marks stripped, and a character
    that still cannot be sent becomes '?'. The result always segments as GSM-7.
    """
    if not any(not _is_gsm7(char) for char in text):
        return text
    composed = unicodedata.normalize("NFC", text)
    composed = _OPENING_GUILLEMET.sub("\u00ab", composed)
    composed = _CLOSING_GUILLEMET.sub("\u00bb", composed)
    out: list[str] = []
    for char in composed:
        if _is_gsm7(char):
            out.append(char)
        elif char in _LOOKALIKES:
            out.append(_LOOKALIKES[char])
        else:
            out.append(_fallback(char))
    return "".join(out)


def cost(text: str, price_per_segment: float) -> float:
    """Return what sending the text costs: providers bill per part, not per character.

    Raises ValueError for a negative or non-finite price, which can only be a configuration
    mistake and would otherwise produce a nonsensical estimate.
    """
    if not math.isfinite(price_per_segment) or price_per_segment < 0:
        raise ValueError(
            f"price per segment must be a finite non-negative number, got {price_per_segment!r}"
        )
    return segment(text).segments * price_per_segment
