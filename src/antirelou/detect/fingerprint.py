"""Placeholder: replaced by the MinHash version."""

from __future__ import annotations

import hashlib


def normalise(text: str) -> str:
    return " ".join(text.casefold().split())


def is_trivial(text: str) -> bool:
    return len(normalise(text)) < 12


def cluster_keys(text: str) -> tuple[str, ...]:
    if is_trivial(text):
        return ()
    return (hashlib.blake2b(normalise(text).encode(), digest_size=8).hexdigest(),)
