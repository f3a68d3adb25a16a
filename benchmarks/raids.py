"""Replay every simulated scenario under three reply policies and compare what they cost.

    .venv/bin/python benchmarks/raids.py [--scenarios raid2017,swarm] [--seed 1] [--quick]
                                         [--plot docs/img/raid2017.png]

Policies: `every_text` (what the 2017 service did: a reply to every text), `once_per_sender`
(the obvious first wall) and `antirelou` (the defence). The baselines run with caps out of
reach, to show what they would have spent; antirelou runs with the 2017 pot (3,700 EUR) and
a 100 EUR daily cap (about 650 two-segment replies a day: the caps must leave room to answer
people, or no policy could). Every run is a real `antirelou replay` (same receive(),
policy, detectors and worker as the live service, on a virtual clock).

"People" are the genuine men and the curious testers: everyone who should get the reply.
Prints one table per scenario, then the issue's targets with PASS/FAIL. A script run on
purpose (`make bench-raids`), not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from antirelou.replay import run_replay
from antirelou.settings import Settings, settings_from_mapping
from antirelou.simulate import (
    GENUINE,
    NEVER,
    PARIS,
    RAIDER,
    SCENARIOS,
    TESTER,
    write_scenario,
)

LINE = "+33939000021"
MODES = ("every_text", "once_per_sender", "antirelou")
DAILY_CAP, POT = 100.0, 3700.0
PEOPLE = (GENUINE, TESTER)


def settings_for(mode: str, workdir: Path) -> Settings:
    real = mode == "antirelou"
    return settings_from_mapping(
        {
            "database_url": f"sqlite:///{workdir}/unused.db",
            "lines": [{"number": LINE, "provider": "sandbox", "timezone": "Europe/Paris"}],
            "budget": {"daily_cap": DAILY_CAP if real else 1e6, "total": POT if real else 1e7},
            "defence": {"mode": mode},
            "evidence": {"key_path": str(workdir / "evidence.key")},
        }
    )


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in path.read_text(encoding="utf-8").splitlines()]


def aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Run:
    scenario: str
    mode: str
    texts: int
    elapsed: float
    spend_total: float
    spend_raiders: float
    people: int
    within_10min: float
    within_24h: float
    outside_raid_10min: float
    within_1h: float
    median_delay_s: float | None
    detection_s: float | None
    false_incidents: int
    never_answered: int
    caps_held: bool


def measure(name: str, mode: str, scenario: Path, truth: dict[str, Any], workdir: Path) -> Run:
    out = workdir / f"{name}-{mode}"
    settings = settings_for(mode, workdir)
    summary = run_replay(scenario, settings, out, timedelta(hours=24), False)
    roles: dict[str, str] = truth["roles"]
    raids = [(aware(r["start"]), aware(r["end"])) for r in truth["raids"]]
    first_text: dict[str, datetime] = {}
    for raw in scenario.read_text(encoding="utf-8").splitlines():
        row = json.loads(raw)
        first_text.setdefault(row["from"], aware(row["at"]))
    outbound = jsonl(out / "outbound.jsonl")
    first_reply: dict[str, datetime] = {}
    spent_by_role: dict[str, float] = defaultdict(float)
    spent_by_day: dict[str, float] = defaultdict(float)
    for reply in outbound:
        sent = aware(reply["sent_at"])
        first_reply.setdefault(reply["to"], sent)
        spent_by_role[roles.get(reply["to"], "unknown")] += reply["cost"]
        spent_by_day[sent.astimezone(PARIS).date().isoformat()] += reply["cost"]
    people = [s for s, role in roles.items() if role in PEOPLE]
    delays = {
        s: (first_reply[s] - first_text[s]).total_seconds() for s in people if s in first_reply
    }
    calm = [s for s in people if not any(a <= first_text[s] <= b for a, b in raids)]
    testers = [s for s in people if roles[s] == TESTER]
    incidents = [
        (aware(i["start"]), aware(i["end"]) if i["end"] else None) for i in summary["incidents"]
    ]
    return Run(
        name,
        mode,
        summary["messages"],
        summary["elapsed_s"],
        summary["spend"],
        spent_by_role[RAIDER],
        len(people),
        share(delays, people, 600),
        share(delays, people, 86400),
        share(delays, calm, 600),
        share(delays, testers, 3600),
        statistics.median(delays.values()) if delays else None,
        detection(raids, incidents),
        false_incidents(raids, incidents),
        sum(1 for r in outbound if roles.get(r["to"]) == NEVER),
        mode != "antirelou"
        or (max(spent_by_day.values(), default=0) <= DAILY_CAP + 1e-9 and summary["spend"] <= POT),
    )


def share(delays: dict[str, float], who: list[str], within: float) -> float:
    if not who:
        return float("nan")
    return 100 * sum(1 for s in who if delays.get(s, float("inf")) <= within) / len(who)


def detection(
    raids: list[tuple[datetime, datetime]], incidents: list[tuple[datetime, Any]]
) -> float | None:
    """Seconds from the first raid's start to the first incident opened after it (or up to
    five minutes before: the raid's first texts may open it)."""
    if not raids:
        return None
    start = raids[0][0]
    opened = [a for a, _ in incidents if a >= start - timedelta(minutes=5)]
    return (min(opened) - start).total_seconds() if opened else None


def false_incidents(
    raids: list[tuple[datetime, datetime]], incidents: list[tuple[datetime, Any]]
) -> int:
    """Incidents that opened nowhere near a raid (an hour's margin either side)."""
    margin = timedelta(hours=1)
    return sum(
        1 for a, _ in incidents if not any(r0 - margin <= a <= r1 + margin for r0, r1 in raids)
    )


def fmt(value: float | None, unit: str = "") -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.1f}{unit}"


def print_table(runs: list[Run]) -> None:
    head = (
        "policy",
        "texts/s",
        "raiders €",
        "total €",
        "people",
        "≤10 min",
        "≤24 h",
        "calm ≤10 min",
        "testers ≤1 h",
        "median delay",
        "detection",
        "false inc.",
        "never-answer",
        "caps",
    )
    rows = [
        (
            r.mode,
            f"{r.texts / r.elapsed:.0f}",
            f"{r.spend_raiders:.2f}",
            f"{r.spend_total:.2f}",
            str(r.people),
            fmt(r.within_10min, "%"),
            fmt(r.within_24h, "%"),
            fmt(r.outside_raid_10min, "%"),
            fmt(r.within_1h, "%"),
            fmt(r.median_delay_s, " s"),
            fmt(r.detection_s, " s"),
            str(r.false_incidents),
            str(r.never_answered),
            "held" if r.caps_held else "PASSED",
        )
        for r in runs
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def targets(results: dict[str, dict[str, Run]]) -> list[tuple[str, str, bool]]:
    checks: list[tuple[str, str, bool]] = []
    raid = results.get("raid2017")
    if raid:
        every, once, ours = raid["every_text"], raid["once_per_sender"], raid["antirelou"]
        checks.append(
            (
                "2017: raiders' spend ≤ 1% of every_text",
                f"{ours.spend_raiders:.2f} vs {every.spend_raiders:.2f} €",
                ours.spend_raiders <= 0.01 * every.spend_raiders,
            )
        )
        checks.append(
            (
                "2017: raiders' spend < half of once_per_sender",
                f"{ours.spend_raiders:.2f} vs {once.spend_raiders:.2f} €",
                ours.spend_raiders < 0.5 * once.spend_raiders,
            )
        )
        checks.append(
            (
                "2017: incident within 60 s of the raid",
                fmt(ours.detection_s, " s"),
                ours.detection_s is not None and ours.detection_s <= 60,
            )
        )
    for name, runs in results.items():
        ours = runs["antirelou"]
        checks.append(
            (f"{name}: caps never passed", "held" if ours.caps_held else "passed", ours.caps_held)
        )
        checks.append(
            (
                f"{name}: never a reply to a never-answer sender",
                str(ours.never_answered),
                ours.never_answered == 0,
            )
        )
        checks.append(
            (
                f"{name}: ≥ 99% of people answered within 24 h",
                fmt(ours.within_24h, "%"),
                ours.within_24h >= 99,
            )
        )
        checks.append(
            (
                f"{name}: outside raids, ≥ 95% within 10 min",
                fmt(ours.outside_raid_10min, "%"),
                ours.outside_raid_10min >= 95 or ours.outside_raid_10min != ours.outside_raid_10min,
            )
        )
    surge = results.get("media_surge")
    if surge:
        ours = surge["antirelou"]
        checks.append(
            (
                "media_surge: at most one false incident",
                str(ours.false_incidents),
                ours.false_incidents <= 1,
            )
        )
        checks.append(
            (
                "media_surge: ≥ 95% of testers within 1 h",
                fmt(ours.within_1h, "%"),
                ours.within_1h >= 95,
            )
        )
    return checks


def plot(scenario: Path, out_dir: Path, png: Path) -> None:
    """Inbound texts per minute, incident bands, replies per minute and cumulative spend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def per_minute(times: list[datetime]) -> tuple[list[datetime], list[int]]:
        counts: dict[datetime, int] = defaultdict(int)
        for t in times:
            counts[t.astimezone(PARIS).replace(second=0, microsecond=0)] += 1
        minutes = int((window[1] - window[0]).total_seconds() // 60)
        keys = [window[0] + timedelta(minutes=n) for n in range(minutes)]
        return keys, [counts[k] for k in keys]

    inbound = [aware(row["at"]) for row in jsonl(scenario)]
    outbound = jsonl(out_dir / "outbound.jsonl")
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    window = (datetime(2017, 10, 30, 12, tzinfo=PARIS), datetime(2017, 10, 31, 6, tzinfo=PARIS))
    inbound = [t for t in inbound if window[0] <= t <= window[1]]
    sent = [aware(r["sent_at"]) for r in outbound]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    x, y = per_minute(inbound)
    top.step(x, y, lw=0.8, where="post", label="texts received per minute")
    rx, ry = per_minute([t for t in sent if window[0] <= t <= window[1]])
    top.step(rx, ry, lw=0.8, where="post", color="tab:green", label="replies sent per minute")
    for incident in summary["incidents"]:
        start, end = (
            aware(incident["start"]),
            aware(incident["end"]) if incident["end"] else window[1],
        )
        if end >= window[0] and start <= window[1]:
            top.axvspan(max(start, window[0]), min(end, window[1]), color="tab:red", alpha=0.15)
    top.set_ylabel("per minute")
    top.set_yscale("symlog")
    top.legend(loc="upper right")
    top.set_title("Replayed 2017 raid under antirelou (red: incident open)")
    in_window = [r for r in outbound if window[0] <= aware(r["sent_at"]) <= window[1]]
    cumulative, total = [], 0.0
    for r in in_window:
        total += r["cost"]
        cumulative.append(total)
    times = [aware(r["sent_at"]) for r in in_window]
    bottom.step(times, cumulative, where="post", color="tab:purple")
    bottom.set_ylabel("replies' spend since noon, EUR")
    bottom.set_xlim(*window)
    fig.autofmt_xdate()
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--plot", type=Path, default=Path("docs/img/raid2017.png"))
    args = parser.parse_args()
    names = [n for n in args.scenarios.split(",") if n]
    modes = [m for m in args.modes.split(",") if m]
    results: dict[str, dict[str, Run]] = {}
    with tempfile.TemporaryDirectory(prefix="antirelou-raids-") as tmp:
        workdir = Path(tmp)
        for name in names:
            scenario, truth_path = write_scenario(name, args.seed, workdir, LINE)
            truth = json.loads(truth_path.read_text(encoding="utf-8"))
            print(f"\n## {name} (seed {args.seed})\n", flush=True)
            runs = []
            for mode in modes:
                started = time.perf_counter()
                runs.append(measure(name, mode, scenario, truth, workdir))
                print(
                    f"  {mode}: replayed in {time.perf_counter() - started:.0f} s", file=sys.stderr
                )
            results[name] = {r.mode: r for r in runs}
            print_table(runs)
            if name == "raid2017" and "antirelou" in modes:
                plot(scenario, workdir / f"{name}-antirelou", args.plot)
                print(f"\n(plot: {args.plot})")
    if set(modes) != set(MODES):
        return 0
    print("\n## Targets\n")
    failed = 0
    for what, measured, ok in targets(results):
        failed += not ok
        print(f"- {'PASS' if ok else 'FAIL'} {what}: {measured}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
