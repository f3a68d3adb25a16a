"""Placeholder: replaced by the lexicon-based matcher."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class AbuseLevel(enum.IntEnum):
    NONE = 0
    RUDE = 1
    INSULT = 2
    THREAT = 3


@dataclass(frozen=True)
class AbuseVerdict:
    level: AbuseLevel
    matches: tuple[str, ...]


_WORDS = {"salope": AbuseLevel.INSULT, "pute": AbuseLevel.INSULT, "connasse": AbuseLevel.INSULT}


def assess(text: str) -> AbuseVerdict:
    found = [w for w in _WORDS if w in text.casefold()]
    level = max((_WORDS[w] for w in found), default=AbuseLevel.NONE)
    return AbuseVerdict(level, tuple(found))


def is_clearly_abusive(text: str) -> bool:
    return assess(text).level >= AbuseLevel.INSULT
