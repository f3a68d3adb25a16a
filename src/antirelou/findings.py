"""What `antirelou check` reports: one line each, at a level that says how much it matters."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Level(enum.StrEnum):
    OK = "ok"
    INFO = "info"
    WARN = "warn"
    FAIL = "FAIL"  # would stop the replies: `antirelou check` exits 1


@dataclass(frozen=True)
class Finding:
    level: Level
    text: str


def report(found: list[Finding]) -> str:
    return "\n".join(f"{finding.level.value:<5} {finding.text}" for finding in found)
