"""Money as integer micro-euros, so sums never drift."""

from __future__ import annotations

MICROS = 1_000_000
MAX_DONATION = 1e9  # euros, either way: more is a typo (and overflows the micro-euro ledger)


def to_micros(euros: float) -> int:
    return round(euros * MICROS)


def to_euros(micros: int) -> float:
    return micros / MICROS


def format_eur(micros: int) -> str:
    return f"{micros / MICROS:,.4f} EUR"
