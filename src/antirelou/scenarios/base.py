"""The scenario builder: senders, their texts and roles, times, and the two output files."""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from antirelou.scenarios.numbers import Numbers
from antirelou.scenarios.texts import Texts

PARIS = ZoneInfo("Europe/Paris")

# Roles in the truth file.
GENUINE = "genuine"  # a man who was given the number: he must get his one reply
TESTER = "tester"  # a curious supporter or journalist: benign, should get a reply too
RAIDER = "raider"  # part of an attack: every reply to him is money lost
NEVER = "never_answer"  # foreign, premium rate, short code, alphanumeric: never a reply
ROLES = (GENUINE, TESTER, RAIDER, NEVER)

# Share of people texting in each local hour (0-23): evenings and nights out.
NIGHT_LIFE = (
    9, 7, 5, 3, 1.5, 0.5, 0.3, 0.3, 0.3, 0.3, 0.4, 0.6,
    0.8, 0.8, 0.6, 0.6, 0.8, 1.2, 2, 3, 4, 5, 7, 9,
)  # fmt: skip
# Share of curious people texting in each local hour: waking hours, a peak in the evening.
DAYTIME = (
    1.2, 0.6, 0.3, 0.15, 0.1, 0.1, 0.3, 1, 2, 2.5, 2.5, 2.5,
    3, 3, 2.5, 2.5, 2.5, 3, 3.5, 4, 4, 4, 3.5, 2.5,
)  # fmt: skip


def paris(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A Paris wall-clock time, as an aware datetime in UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=PARIS).astimezone(UTC)


def hour_weight(table: Sequence[float], weekend_boost: float = 1.0) -> Callable[[datetime], float]:
    """Weight of a moment by its local hour; nights of Friday and Saturday count `weekend_boost`."""

    def weight(when: datetime) -> float:
        local = when.astimezone(PARIS)
        night_of = (local - timedelta(hours=6)).weekday()  # 02:00 Saturday is Friday's night
        boost = weekend_boost if night_of in (4, 5) else 1.0
        return table[local.hour] * boost

    return weight


def burst(
    at: datetime, tau: timedelta, rise: timedelta = timedelta(minutes=2)
) -> Callable[[datetime], float]:
    """Attention after an event: rises over `rise`, then decays with time constant `tau`."""

    def weight(when: datetime) -> float:
        if when < at:
            return 0.0
        age = (when - at) / tau
        ramp = min(1.0, (when - at) / rise) if rise > timedelta(0) else 1.0
        return ramp * math.exp(-age)

    return weight


@dataclass
class Builder:
    name: str
    seed: int
    line: str
    scale: float = 1.0
    rng: random.Random = field(init=False)
    numbers: Numbers = field(init=False)
    say: Texts = field(init=False)
    texts: list[tuple[datetime, int, str, str]] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)
    never: dict[str, str] = field(default_factory=dict)
    attacks: list[dict[str, Any]] = field(default_factory=list)
    phases: dict[str, str] = field(default_factory=dict)
    facts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Not for secrets: a reproducible stream of choices for a given name and seed.
        self.rng = random.Random(f"antirelou-scenario:{self.name}:{self.seed}")  # noqa: S311
        self.numbers = Numbers(self.rng, reserved=(self.line,))
        self.say = Texts(self.rng)

    # --- building ------------------------------------------------------------------------

    def n(self, count: float) -> int:
        """A population size at this builder's scale (never below one)."""
        return max(1, round(count * self.scale))

    def add(self, sender: str, at: datetime, body: str) -> None:
        self.texts.append((at, len(self.texts), sender, body))

    def role(self, sender: str, role: str, never: str | None = None) -> None:
        assert role in ROLES
        self.roles[sender] = role
        if never is not None:
            self.never[sender] = never

    def times(
        self,
        start: datetime,
        end: datetime,
        count: int,
        weight: Callable[[datetime], float],
        step: timedelta = timedelta(minutes=1),
    ) -> list[datetime]:
        """`count` moments in [start, end), drawn with density proportional to `weight`."""
        slots = max(1, math.ceil((end - start) / step))
        grid = [start + step * i for i in range(slots)]
        weights = [max(0.0, weight(t + step / 2)) for t in grid]
        if not any(weights):
            weights = [1.0] * slots
        picks = self.rng.choices(range(slots), weights=weights, k=count)
        moments = [grid[i] + step * self.rng.random() for i in picks]
        return sorted(min(m, end - timedelta(milliseconds=1)) for m in moments)

    def later(self, at: datetime, median: timedelta, sigma: float = 0.8) -> datetime:
        """A moment after `at`, a lognormal delay with the given median."""
        factor = self.rng.lognormvariate(0.0, sigma)
        return at + median * factor

    # --- populations every scenario has ---------------------------------------------------

    def genuine_men(self, start: datetime, end: datetime, count: int) -> None:
        """Men given the number, texting it mostly in the evening and at night."""
        for first in self.times(start, end, count, hour_weight(NIGHT_LIFE, 2.0)):
            sender = self.numbers.fr_mobile()
            self.role(sender, GENUINE)
            self.add(sender, first, self.say.genuine_first())
            at, more = first, self.rng.choices((0, 1, 2, 3), weights=(55, 28, 12, 5))[0]
            for _ in range(more):
                at = self.later(at, timedelta(minutes=4), 1.0)
                if at < end:
                    self.add(sender, at, self.say.genuine_again())

    def testers(
        self,
        start: datetime,
        end: datetime,
        count: int,
        weight: Callable[[datetime], float],
        first: Callable[[], str] | None = None,
        foreign_share: float = 0.03,
    ) -> None:
        """Curious people testing the number; a few from abroad (never answered)."""
        first = first or self.say.tester_first
        for at in self.times(start, end, count, weight):
            if self.rng.random() < foreign_share:
                region = self.rng.choice(("BE", "BE", "CH", "CH", "LU", "CA"))
                sender = self.numbers.foreign_mobile(region)
                self.role(sender, NEVER, "foreign")
            else:
                sender = self.numbers.fr_mobile()
                self.role(sender, TESTER)
            self.add(sender, at, first())
            more = self.rng.choices((0, 1, 2), weights=(70, 23, 7))[0]
            for _ in range(more):
                at = self.later(at, timedelta(minutes=3), 0.9)
                if at < end:
                    self.add(sender, at, self.say.tester_again())

    def attack(self, kind: str, senders: Sequence[str]) -> None:
        """Record an attack window: from the first to the last text of `senders`."""
        chosen = set(senders)
        moments = [at for at, _, sender, _ in self.texts if sender in chosen]
        self.attacks.append(
            {
                "kind": kind,
                "start": _iso(min(moments)),
                "end": _iso(max(moments)),
                "senders": len(chosen),
                "texts": len(moments),
            }
        )

    # --- output --------------------------------------------------------------------------

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        ordered = sorted(self.texts)
        texts_path = out_dir / f"{self.name}.jsonl"
        with texts_path.open("w", encoding="utf-8", newline="\n") as handle:
            for index, (at, _, sender, body) in enumerate(ordered):
                digest = hashlib.blake2b(
                    f"{self.name}:{self.seed}:{index}".encode(), digest_size=16
                ).hexdigest()
                row = {"id": f"SM{digest}", "at": _iso(at), "from": sender, "to": self.line}
                row["body"] = body
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        truth_path = out_dir / f"{self.name}.truth.json"
        truth_path.write_text(
            json.dumps(self.truth(ordered), ensure_ascii=False, indent=1, sort_keys=True) + "\n",
            encoding="utf-8",
            newline="\n",
        )
        return texts_path, truth_path

    def truth(self, ordered: list[tuple[datetime, int, str, str]]) -> dict[str, Any]:
        raids = [a for a in self.attacks if a["kind"] in ("raid", "swarm")]
        counts = dict.fromkeys(ROLES, 0)
        for role in self.roles.values():
            counts[role] += 1
        return {
            "scenario": self.name,
            "seed": self.seed,
            "scale": self.scale,
            "line": self.line,
            "timezone": "Europe/Paris",
            "allowed_countries": ["FR"],
            "start": _iso(ordered[0][0]),
            "end": _iso(ordered[-1][0]),
            "texts": len(ordered),
            "raid": {"start": raids[0]["start"], "end": raids[0]["end"]} if raids else None,
            "attacks": self.attacks,
            "phases": self.phases,
            "roles": counts,
            "senders": self.roles,
            "never_answer": self.never,
            "facts": self.facts,
        }


def _iso(when: datetime) -> str:
    return when.astimezone(PARIS).isoformat(timespec="milliseconds")
