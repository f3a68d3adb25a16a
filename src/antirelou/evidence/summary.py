"""The figures of an export, gathered while its records stream past (for report.pdf)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from antirelou.evidence.hashing import parse_utc

EXCERPTS = 25
_SPACES = re.compile(r"\s+")


@dataclass
class SenderFigures:
    texts: int = 0
    flagged: int = 0
    first: datetime | None = None
    last: datetime | None = None


@dataclass
class Incident:
    id: int
    line: str
    opened_at: datetime
    closed_at: datetime | None
    signals: list[str]


@dataclass
class Summary:
    """Counts, times, senders and excerpts of the exported texts."""

    times: list[datetime] = field(default_factory=list)
    flagged_times: list[datetime] = field(default_factory=list)
    senders: dict[str, SenderFigures] = field(default_factory=dict)
    decisions: Counter[str] = field(default_factory=Counter)
    bodies: Counter[str] = field(default_factory=Counter)
    body_senders: dict[str, set[str]] = field(default_factory=dict)
    excerpts: list[tuple[datetime, str, str]] = field(default_factory=list)
    lines: set[str] = field(default_factory=set)
    unsigned: int = 0
    purged: int = 0
    replies: int = 0
    reply_cost_micros: int = 0
    calls: int = 0
    operator_actions: int = 0
    incidents: dict[int, Incident] = field(default_factory=dict)

    @property
    def texts(self) -> int:
        return len(self.times)

    def observe(self, kind: str, content: dict[str, Any] | None) -> None:
        if content is None:
            self.purged += 1
        elif kind == "inbound":
            self._inbound(content)
        elif kind == "reply":
            self.replies += 1
            self.reply_cost_micros += int(content.get("cost_micros") or 0)
        elif kind == "call":
            self.calls += 1
        elif kind in ("incident_opened", "incident_closed"):
            self._incident(content)
        elif kind == "operator_action":
            self.operator_actions += 1

    def _inbound(self, content: dict[str, Any]) -> None:
        at = parse_utc(content["received_at"])
        sender, body = str(content["sender"]), str(content["body"])
        flagged = bool(content.get("signals"))
        self.times.append(at)
        if flagged:
            self.flagged_times.append(at)
        self.decisions[str(content.get("decision"))] += 1
        self.lines.add(str(content.get("recipient")))
        self.unsigned += not content.get("signature_checked")
        figures = self.senders.setdefault(sender, SenderFigures())
        figures.texts += 1
        figures.flagged += flagged
        figures.first = figures.first or at
        figures.last = at
        key = _SPACES.sub(" ", body.casefold()).strip()
        if key:
            self.bodies[key] += 1
            self.body_senders.setdefault(key, set()).add(sender)
        if len(self.excerpts) < EXCERPTS:
            self.excerpts.append((at, sender, body))

    def _incident(self, content: dict[str, Any]) -> None:
        closed = content.get("closed_at")
        signals = content.get("signals") or {}
        names = signals.get("signals", []) if isinstance(signals, dict) else list(signals)
        self.incidents[int(content["incident"])] = Incident(
            int(content["incident"]),
            str(content.get("line")),
            parse_utc(content["opened_at"]),
            parse_utc(closed) if closed else None,
            [str(name) for name in names],
        )

    def ranked_senders(self, limit: int = 20) -> list[tuple[str, SenderFigures]]:
        ranked = sorted(self.senders.items(), key=lambda item: (-item[1].texts, item[0]))
        return ranked[:limit]

    def repeated_texts(self, limit: int = 10) -> list[tuple[str, int, int]]:
        """The texts sent most often (copy-paste), with how many senders sent each."""
        common = [(body, n) for body, n in self.bodies.most_common(limit) if n > 1]
        return [(body, n, len(self.body_senders[body])) for body, n in common]

    @property
    def first(self) -> datetime | None:
        return min(self.times) if self.times else None

    @property
    def last(self) -> datetime | None:
        return max(self.times) if self.times else None
