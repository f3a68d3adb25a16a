"""`antirelou simulate`: write a scenario of inbound texts, and separately who is who.

    texts, truth = write_scenario("raid2017", 1, Path("scenarios"), "+33939000021")

`<out_dir>/<name>.jsonl` holds one text a line, in time order, in the format `antirelou replay`
reads: {"id": "SM...", "at": ISO 8601 with offset, "from": sender, "to": line, "body": ...}.
`<out_dir>/<name>.truth.json` says who is who: each sender's role (genuine, tester, raider,
never_answer), the senders that must never be answered and why, the attack windows (and the
first raid's start and end), the phases, and the public facts the scenario is built from.

The same name, seed, line and scale always give the same bytes. `scale` shrinks (or grows) every
population, for quick runs; the time line stays the same. See docs/raids.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from antirelou.scenarios import attacks, benign, raid2017
from antirelou.scenarios.base import GENUINE, NEVER, RAIDER, ROLES, TESTER, Builder

__all__ = [
    "GENUINE", "NEVER", "RAIDER", "ROLES", "SCENARIOS", "TESTER", "build_scenario",
    "write_scenario",
]  # fmt: skip

SCENARIOS: dict[str, Callable[[Builder], None]] = {
    "raid2017": raid2017.build,
    "swarm": attacks.swarm,
    "media_surge": benign.media_surge,
    "slow_drip": attacks.slow_drip,
    "never_answer": benign.never_answer,
}


def build_scenario(name: str, seed: int, line: str, scale: float = 1.0) -> Builder:
    """The scenario in memory (texts, roles, attacks), not yet written."""
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if scale <= 0:
        raise ValueError("scale must be positive")
    builder = Builder(name, seed, line, scale)
    SCENARIOS[name](builder)
    return builder


def write_scenario(
    name: str, seed: int, out_dir: Path, line: str, scale: float = 1.0
) -> tuple[Path, Path]:
    """Write `<out_dir>/<name>.jsonl` and `<out_dir>/<name>.truth.json`; return both paths."""
    return build_scenario(name, seed, line, scale).write(Path(out_dir))
