"""Replay every scenario under three reply policies and check the raid-defence targets.

    .venv/bin/python benchmarks/raids.py [--scenarios raid2017,swarm,...] [--seed 1]
                                         [--quick | --scale 0.25] [--drain 24h]
                                         [--plot docs/img/raid2017.png] [--profile]

For each scenario (`antirelou.simulate`), written to a temporary folder with its truth file,
and each policy, `antirelou.replay.run_replay` runs the live code on a virtual clock:

  * every_text       reply to every text (what the 2017 number did), caps out of the way;
  * once_per_sender  one reply per sender per window, nothing else, caps out of the way;
  * antirelou        the full defence (the default), under the 2017 pot (EUR 3,700) and a
                     daily cap of EUR 300.

All three send the default reply (one GSM-7 segment) at the default prices. Columns:

  raiders EUR   replies sent to raiders (what a raid can make us spend besides inbound)
  total EUR     everything: inbound texts (billed whatever we do) and every reply
  ≤10 min       people (genuine and testers) answered within 10 minutes of their first text,
                all of them / only those who first texted outside an attack window
  ≤24 h         people answered within 24 hours (the replay runs on --drain after the last text)
  median        median delay of the first reply to people who got one
  detect        first incident's opening after the raid's first text (0 if one was open)
  false inc     incidents that overlap no raid or swarm window (+30 min)
  never         replies to senders that must never be answered (must be 0)
  caps          the daily and total caps held (from the replay's budget counters)
  texts/s       replayed texts per second of wall time (feeding and draining included)

Then the issue's targets, PASS or FAIL each; and raid2017 under antirelou drawn to --plot.
Exit status: 0 all targets met, 1 a target missed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from antirelou.durations import parse_duration
from antirelou.replay import read_scenario, run_replay
from antirelou.settings import settings_from_mapping
from antirelou.simulate import SCENARIOS, write_scenario

LINE = "+33939000021"
POLICIES = ("every_text", "once_per_sender", "antirelou")
BIG_BUDGET = {"daily_cap": 1_000_000.0, "total": 10_000_000.0}
DEFENCE_BUDGET = {"daily_cap": 300.0, "total": 3700.0}  # the 2017 pot
PEOPLE = ("genuine", "tester")
FALSE_SLACK = timedelta(minutes=30)


@dataclass
class Run:
    scenario: str
    policy: str
    texts: int
    elapsed: float
    raider_spend: float
    reply_spend: float
    total_spend: float
    people: int
    within_10min: float
    within_10min_outside: float | None
    within_24h: float
    testers_1h: float | None
    median_delay: float | None  # seconds
    detection: float | None  # seconds; None: no raid in the scenario
    detected: bool
    incidents: int
    false_incidents: int
    never_replies: int
    caps_held: bool
    capped_people: int  # people refused a reply because a cap was reached
    outbound: list[dict[str, Any]] = field(default_factory=list, repr=False)
    incident_spans: list[tuple[datetime, datetime | None]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.texts / self.elapsed if self.elapsed else 0.0


def settings_for(policy: str, key_dir: Path) -> Any:
    budget = DEFENCE_BUDGET if policy == "antirelou" else BIG_BUDGET
    return settings_from_mapping(
        {
            "database_url": f"sqlite:///{key_dir}/unused.db",
            "public_url": "https://decoy.example.org",
            "lines": [{"number": LINE, "provider": "sandbox"}],
            "budget": budget,
            "defence": {"mode": policy},
            "evidence": {"key_path": str(key_dir / "evidence.key")},
        }
    )


def replay_one(
    scenario: str, policy: str, texts_path: Path, truth: dict[str, Any], drain: timedelta
) -> Run:
    with tempfile.TemporaryDirectory(prefix=f"raids-{scenario}-{policy}-") as tmp:
        out = Path(tmp)
        settings = settings_for(policy, out)
        summary = run_replay(texts_path, settings, out / "replay", drain, progress=False)
        inbound = _jsonl(out / "replay" / "inbound.jsonl")
        outbound = _jsonl(out / "replay" / "outbound.jsonl")
        caps_held = _caps_held(out / "replay" / "replay.db", settings)
    with texts_path.open(encoding="utf-8") as handle:
        scenario_texts = list(read_scenario(handle))
    return measure(scenario, policy, scenario_texts, truth, summary, inbound, outbound, caps_held)


def measure(
    scenario: str,
    policy: str,
    texts: list[Any],
    truth: dict[str, Any],
    summary: dict[str, Any],
    inbound: list[dict[str, Any]],
    outbound: list[dict[str, Any]],
    caps_held: bool,
) -> Run:
    roles: dict[str, str] = truth["senders"]
    never = set(truth["never_answer"])
    sender_of = {t.id: t.sender for t in texts}
    first_at: dict[str, datetime] = {}
    for t in texts:
        first_at.setdefault(t.sender, t.at)
    replied_at: dict[str, datetime] = {}
    raider_spend = reply_spend = 0.0
    never_replies = 0
    for row in outbound:
        sender = sender_of[row["in_reply_to"]]
        sent = datetime.fromisoformat(row["sent_at"])
        row["sender"], row["role"] = sender, roles.get(sender, "?")
        reply_spend += row["cost"]
        if row["role"] == "raider":
            raider_spend += row["cost"]
        if sender in never:
            never_replies += 1
        if sender not in replied_at or sent < replied_at[sender]:
            replied_at[sender] = sent
    windows = [
        (datetime.fromisoformat(a["start"]), datetime.fromisoformat(a["end"]))
        for a in truth["attacks"]
        if a["kind"] in ("raid", "swarm")
    ]
    people = sorted(s for s, r in roles.items() if r in PEOPLE and s not in never)
    delays = {s: (replied_at[s] - first_at[s]).total_seconds() for s in people if s in replied_at}

    def share(group: Iterable[str], limit: timedelta) -> float | None:
        chosen = list(group)
        if not chosen:
            return None
        ok = sum(1 for s in chosen if s in delays and delays[s] <= limit.total_seconds())
        return 100.0 * ok / len(chosen)

    def in_attack(sender: str) -> bool:
        at = first_at[sender]
        return any(start <= at <= end + FALSE_SLACK for start, end in windows)

    spans = [
        (
            datetime.fromisoformat(i["start"]),
            datetime.fromisoformat(i["end"]) if i["end"] else None,
        )
        for i in summary["incidents"]
    ]
    detection, detected = _detection(truth, spans)
    false_incidents = sum(
        1
        for start, end in spans
        if not any(
            start <= w_end + FALSE_SLACK and (end is None or end >= w_start)
            for w_start, w_end in windows
        )
    )
    capped = {
        row["from"]
        for row in inbound
        if {"daily_cap_reached", "pot_exhausted"} & set(row["reasons"])
    }
    testers = [s for s in people if roles[s] == "tester"]
    return Run(
        scenario=scenario,
        policy=policy,
        texts=summary["messages"],
        elapsed=summary["elapsed_s"],
        raider_spend=raider_spend,
        reply_spend=reply_spend,
        total_spend=summary["spend"],
        people=len(people),
        within_10min=share(people, timedelta(minutes=10)) or 0.0,
        within_10min_outside=share((s for s in people if not in_attack(s)), timedelta(minutes=10)),
        within_24h=share(people, timedelta(hours=24)) or 0.0,
        testers_1h=share(testers, timedelta(hours=1)),
        median_delay=statistics.median(delays.values()) if delays else None,
        detection=detection,
        detected=detected,
        incidents=len(spans),
        false_incidents=false_incidents,
        never_replies=never_replies,
        caps_held=caps_held,
        capped_people=len(capped & set(people)),
        outbound=outbound,
        incident_spans=spans,
    )


def _detection(
    truth: dict[str, Any], spans: list[tuple[datetime, datetime | None]]
) -> tuple[float | None, bool]:
    raid = truth.get("raid")
    if not raid:
        return None, False
    start, end = datetime.fromisoformat(raid["start"]), datetime.fromisoformat(raid["end"])
    opened = [
        max(0.0, (s - start).total_seconds())
        for s, e in spans
        if s <= end and (e is None or e >= start)
    ]
    if not opened:
        return None, False
    return min(opened), True


def _caps_held(database: Path, settings: Any) -> bool:
    daily = round(settings.budget.daily_cap * 1_000_000)
    total = round(settings.budget.total * 1_000_000)
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "SELECT key, spent_micros, reserved_micros FROM budget_counters"
        ).fetchall()
    for key, spent, reserved in rows:
        used = (spent or 0) + (reserved or 0)
        if key.startswith("day:") and used > daily:
            return False
        if key == "total" and used > total:
            return False
    return True


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


# --- printing ------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _delay(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _detect(run: Run, truth: dict[str, Any]) -> str:
    if not truth.get("raid"):
        return "-"
    return _delay(run.detection) if run.detected else "missed"


HEADER = (
    f"{'policy':<16} {'raiders EUR':>11} {'total EUR':>10} {'≤10 min':>8} {'≤10m out':>8} "
    f"{'≤24 h':>7} {'median':>8} {'detect':>7} {'false inc':>9} {'never':>5} {'caps':>5} "
    f"{'texts/s':>7}"
)


def print_table(name: str, truth: dict[str, Any], runs: list[Run]) -> None:
    roles = truth["roles"]
    print(
        f"\n## {name}: {truth['texts']:,} texts; senders: {roles['genuine']} genuine, "
        f"{roles['tester']} testers, {roles['raider']} raiders, {roles['never_answer']} "
        f"never-answer"
    )
    print(HEADER)
    for run in runs:
        print(
            f"{run.policy:<16} {run.raider_spend:>11.2f} {run.total_spend:>10.2f} "
            f"{run.within_10min:>7.1f}% {_pct(run.within_10min_outside):>8} "
            f"{run.within_24h:>6.1f}% {_delay(run.median_delay):>8} {_detect(run, truth):>7} "
            f"{run.false_incidents:>9} {run.never_replies:>5} "
            f"{'yes' if run.caps_held else 'NO':>5} {run.rate:>7.0f}"
        )
    defence = next((r for r in runs if r.policy == "antirelou"), None)
    if defence is not None:
        print(
            f"antirelou: {defence.incidents} incident(s), {defence.capped_people} people "
            f"refused by a cap, testers answered within 1 h: {_pct(defence.testers_1h)}"
        )


@dataclass
class Target:
    name: str
    ok: bool | None  # None: not measured in this run
    detail: str


def targets(
    results: dict[str, dict[str, Run]], truths: dict[str, dict[str, Any]], speed: float
) -> list[Target]:
    found: list[Target] = []
    raid = results.get("raid2017", {})
    if {"every_text", "once_per_sender", "antirelou"} <= set(raid):
        ours, every, once = raid["antirelou"], raid["every_text"], raid["once_per_sender"]
        found.append(
            Target(
                "raid2017: raider spend <= 1% of reply-to-every-text",
                ours.raider_spend <= 0.01 * every.raider_spend,
                f"{ours.raider_spend:.2f} vs {every.raider_spend:.2f} EUR "
                f"({_ratio(ours.raider_spend, every.raider_spend)})",
            )
        )
        found.append(
            Target(
                "raid2017: raider spend < half of once-per-sender",
                ours.raider_spend < 0.5 * once.raider_spend,
                f"{ours.raider_spend:.2f} vs {once.raider_spend:.2f} EUR "
                f"({_ratio(ours.raider_spend, once.raider_spend)})",
            )
        )
        found.append(
            Target(
                "raid2017: incident opened within 60 s of the raid's start",
                ours.detected and (ours.detection or 0) <= 60,
                _detect(ours, truths["raid2017"]),
            )
        )
    for name, runs in results.items():
        ours_run = runs.get("antirelou")
        if ours_run is None:
            continue
        found.append(
            Target(
                f"{name}: caps never passed (all policies)",
                all(r.caps_held for r in runs.values()),
                ", ".join(f"{p} {'held' if r.caps_held else 'PASSED'}" for p, r in runs.items()),
            )
        )
        capped = ours_run.capped_people > 0
        found.append(
            Target(
                f"{name}: >= 99% of people answered within 24 h",
                None if capped else ours_run.within_24h >= 99.0,
                f"{ours_run.within_24h:.1f}%"
                + (f" ({ours_run.capped_people} refused by a cap)" if capped else ""),
            )
        )
        outside = ours_run.within_10min_outside
        found.append(
            Target(
                f"{name}: outside raids >= 95% answered within 10 min",
                None if outside is None or capped else outside >= 95.0,
                _pct(outside),
            )
        )
        found.append(
            Target(
                f"{name}: no reply to a never-answer sender",
                all(r.never_replies == 0 for r in runs.values()),
                ", ".join(f"{p} {r.never_replies}" for p, r in runs.items()),
            )
        )
    surge = results.get("media_surge", {}).get("antirelou")
    if surge is not None:
        found.append(
            Target(
                "media_surge: at most one false incident",
                surge.false_incidents <= 1,
                str(surge.false_incidents),
            )
        )
        found.append(
            Target(
                "media_surge: >= 95% of testers answered within 1 h",
                None
                if surge.capped_people
                else surge.testers_1h is not None and surge.testers_1h >= 95.0,
                _pct(surge.testers_1h),
            )
        )
    found.append(Target("replay: >= 2,000 texts per second", speed >= 2000, f"{speed:.0f}/s"))
    return found


def _ratio(part: float, whole: float) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "-"


# --- the picture ---------------------------------------------------------------------------


def plot(path: Path, truth: dict[str, Any], texts: list[Any], runs: dict[str, Run]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from zoneinfo import ZoneInfo

    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    zone = ZoneInfo(truth["timezone"])
    raid_start = datetime.fromisoformat(truth["raid"]["start"])
    begin = raid_start - timedelta(hours=3)
    end = datetime.fromisoformat(truth["end"])
    roles = truth["senders"]

    def minute(at: datetime) -> datetime:
        return at.astimezone(zone).replace(second=0, microsecond=0, tzinfo=None)

    inbound: dict[str, Counter[datetime]] = defaultdict(Counter)
    for t in texts:
        if begin <= t.at <= end:
            kind = "raiders" if roles.get(t.sender) == "raider" else "others"
            inbound[kind][minute(t.at)] += 1
    ours = runs["antirelou"]
    replies: dict[str, Counter[datetime]] = defaultdict(Counter)
    for row in ours.outbound:
        at = datetime.fromisoformat(row["sent_at"])
        if begin <= at <= end:
            kind = "raiders" if row["role"] == "raider" else "people"
            replies[kind][minute(at)] += 1

    fig, axes = plt.subplots(3, 1, figsize=(11, 8.5), sharex=True)
    grid = [
        minute(begin) + timedelta(minutes=i)
        for i in range(int((end - begin) / timedelta(minutes=1)) + 1)
    ]
    ax = axes[0]
    ax.fill_between(grid, [inbound["raiders"][m] for m in grid], step="post", color="#c0392b",
                    alpha=0.8, label="texts from raiders")  # fmt: skip
    ax.step(grid, [inbound["others"][m] for m in grid], where="post", color="#2c3e50",
            linewidth=0.8, label="texts from everyone else")  # fmt: skip
    ax.set_ylabel("inbound texts / min")
    attack = truth["attacks"][0]
    ax.set_title(
        f"raid2017 replayed under antirelou: {attack['texts']:,} texts from "
        f"{attack['senders']:,} raiders, Monday 16:00-20:00"
    )
    ax = axes[1]
    ax.step(grid, [replies["people"][m] for m in grid], where="post", color="#27ae60",
            label="replies to people (genuine, testers)")  # fmt: skip
    ax.step(grid, [replies["raiders"][m] for m in grid], where="post", color="#c0392b",
            label="replies to raiders")  # fmt: skip
    ax.set_ylabel("replies sent / min")
    ax = axes[2]
    colours = {"every_text": "#c0392b", "once_per_sender": "#e67e22", "antirelou": "#27ae60"}
    for policy, run in runs.items():
        costs = sorted(
            (datetime.fromisoformat(r["sent_at"]), r["cost"])
            for r in run.outbound
            if datetime.fromisoformat(r["sent_at"]) <= end
        )
        total, xs, ys = 0.0, [], []
        for at, cost in costs:
            total += cost
            if at >= begin:
                xs.append(at.astimezone(zone).replace(tzinfo=None))
                ys.append(total)
        ax.step(xs, ys, where="post", color=colours.get(policy, "grey"), label=policy)
    ax.set_ylabel("spent on replies since launch, EUR")
    for ax in axes:
        for start, stop in ours.incident_spans:
            stop = stop or end
            if stop >= begin:
                ax.axvspan(
                    start.astimezone(zone).replace(tzinfo=None),
                    stop.astimezone(zone).replace(tzinfo=None),
                    color="#f1c40f",
                    alpha=0.25,
                    label="incident open",
                )
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        ax.legend(unique.values(), unique.keys(), loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)
    formatter = mdates.DateFormatter("%a %H:%M")  # type: ignore[no-untyped-call]
    axes[2].xaxis.set_major_formatter(formatter)
    axes[2].set_xlabel("Europe/Paris time")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a tenth of the populations")
    parser.add_argument("--scale", type=float, default=None)
    parser.add_argument("--drain", default="24h")
    parser.add_argument("--plot", type=Path, default=Path("docs/img/raid2017.png"))
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the antirelou replays")
    args = parser.parse_args(argv)
    scale = args.scale if args.scale is not None else (0.1 if args.quick else 1.0)
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [n for n in names if n not in SCENARIOS] + [p for p in policies if p not in POLICIES]
    if unknown:
        parser.error(f"unknown: {', '.join(unknown)}")
    drain = parse_duration(args.drain)
    print(f"seed {args.seed}, scale {scale}, drain {args.drain}; budgets: baselines "
          f"uncapped, antirelou daily cap EUR {DEFENCE_BUDGET['daily_cap']:.0f}, "
          f"pot EUR {DEFENCE_BUDGET['total']:.0f}")  # fmt: skip
    results: dict[str, dict[str, Run]] = {}
    truths: dict[str, dict[str, Any]] = {}
    profiler = cProfile.Profile() if args.profile else None
    fed = elapsed = 0.0
    with tempfile.TemporaryDirectory(prefix="raids-scenarios-") as tmp:
        for name in names:
            texts_path, truth_path = write_scenario(name, args.seed, Path(tmp), LINE, scale)
            truth = json.loads(truth_path.read_text(encoding="utf-8"))
            truths[name] = truth
            results[name] = {}
            for policy in policies:
                started = time.perf_counter()
                if profiler is not None and policy == "antirelou":
                    profiler.enable()
                run = replay_one(name, policy, texts_path, truth, drain)
                if profiler is not None and policy == "antirelou":
                    profiler.disable()
                results[name][policy] = run
                fed += run.texts
                elapsed += run.elapsed
                print(f"  {name} / {policy}: {time.perf_counter() - started:.1f} s",
                      file=sys.stderr)  # fmt: skip
            print_table(name, truth, list(results[name].values()))
            if name == "raid2017" and not args.no_plot and "antirelou" in results[name]:
                with texts_path.open(encoding="utf-8") as handle:
                    plot(args.plot, truth, list(read_scenario(handle)), results[name])
                print(f"drew {args.plot}")
    speed = fed / elapsed if elapsed else 0.0
    print(f"\nreplay speed: {fed:,.0f} texts in {elapsed:.1f} s = {speed:,.0f} texts/s "
          "(feeding and a 24 h drain, all policies)")  # fmt: skip
    print("\n## targets")
    found = targets(results, truths, speed)
    for target in found:
        verdict = "n/a " if target.ok is None else ("PASS" if target.ok else "FAIL")
        print(f"{verdict}  {target.name}: {target.detail}")
    if profiler is not None:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(35)
        print(stream.getvalue())
    return 0 if all(t.ok is not False for t in found) else 1


if __name__ == "__main__":
    sys.exit(main())
