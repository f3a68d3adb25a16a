"""Opt-out and opt-in keywords, as carriers and providers understand them.

A text that is only "STOP" (or "Arrêt.", "stop!") asks us never to text again. We record
it and never auto-reply to it: an answer to STOP is exactly what the law and the carriers
forbid, and it would cost money for nothing.
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata

OPT_OUT_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "end", "quit", "revoke", "optout", "cancel", "arret"}
)
OPT_IN_WORDS = frozenset({"start", "unstop"})


class Keyword(enum.StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"


def normalise(body: str) -> str:
    """Lower case, accents and punctuation removed: "  Arrêt ! " -> "arret"."""
    decomposed = unicodedata.normalize("NFKD", body)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[\W_]+", "", bare.casefold())


@functools.lru_cache(maxsize=4096)  # pure; a raid sends the same texts again and again
def keyword_of(body: str) -> Keyword | None:
    """The keyword a text consists of, if it is nothing but one."""
    word = normalise(body)
    if word in OPT_OUT_WORDS:
        return Keyword.OPT_OUT
    if word in OPT_IN_WORDS:
        return Keyword.OPT_IN
    return None
