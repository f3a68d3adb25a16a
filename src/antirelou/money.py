"""Money as integer micro-euros, so sums never drift."""

from __future__ import annotations

MICROS = 1_000_000


def to_micros(euros: float) -> int:
    return round(euros * MICROS)


def to_euros(micros: int) -> float:
    return micros / MICROS


def format_eur(micros: int) -> str:
    return f"{micros / MICROS:,.4f} EUR"
