"""Benchmark the evidence log against the issue's targets.

    .venv/bin/python benchmarks/evidence.py [--texts 100000] [--appends 2000]
                                            [--postgres postgresql+psycopg://...]

Targets (evidence issue):
  * export and verify of 100,000 texts, each in under 30 s on this machine;
  * the evidence record adds under 20% to the webhook's median time.

What runs: a fresh database (SQLite in a temporary folder, or --postgres) filled fast with
bulk inserts (messages rows and their chained evidence records, computed exactly as
append() does, checkpoints every 5,000 records); then `verify` of the whole log, `export
--all` to a zip, and `verify` of that zip, each timed. Then the per-text cost: receive()
(the webhook's whole database work, in one durable transaction) timed without and with
the evidence record appended in that same transaction, median of --appends texts each.
The webhook's HTTP time comes on top of receive(), so the ratio printed is an upper bound
of the overhead on the webhook. Prints a table; exit 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchkit import new_database
from sqlalchemy import update

import antirelou.inbound
from antirelou import migrate, models
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.evidence import checkpoints, hashing, hooks
from antirelou.evidence.bundle import export
from antirelou.evidence.bundle_verify import verify_bundle
from antirelou.evidence.selection import Selection
from antirelou.evidence.settings import EvidenceSettings
from antirelou.evidence.tables import evidence_head, evidence_records
from antirelou.evidence.verify import verify_database
from antirelou.providers.base import InboundSms
from antirelou.service import Service
from antirelou.settings import Settings, settings_from_mapping

LINE = "+33939000021"
START = datetime(2017, 10, 30, 14, 0, tzinfo=UTC)
TARGET_SECONDS = 30.0
TARGET_OVERHEAD = 0.20
BODIES = ("Salut, c'est Karim du bar", "ferme ta gueule", "on va vider ta cagnotte", "T'es où ?")


class BenchSettings(Settings):
    evidence: EvidenceSettings = EvidenceSettings()


def service_for(url: str, folder: Path) -> Service:
    base = settings_from_mapping({"database_url": url, "lines": [{"number": LINE}],
                                  "budget": {"daily_cap": 1e6, "total": 1e7}})  # fmt: skip
    data = {**base.model_dump(), "evidence": {"key_path": str(folder / "evidence.key")}}
    engine = make_engine(url)
    migrate.upgrade(engine)
    service = Service(BenchSettings.model_validate(data), engine, VirtualClock(START))
    service.sync_lines()
    return service


@contextmanager
def database(postgres: str, folder: Path, name: str) -> Iterator[str]:
    if not postgres:
        yield f"sqlite:///{folder / name}.db"
        return
    with new_database(postgres) as url:
        yield url


# --- filling the log fast -----------------------------------------------------------------


def _message(n: int, at: datetime) -> dict[str, Any]:
    sender = f"+3361{n % 40_000:07d}"
    body = BODIES[n % len(BODIES)]
    raw = {"Body": body, "From": sender, "To": LINE, "MessageSid": f"SM{n:032x}", "NumMedia": "0"}
    return {
        "id": n, "provider": "twilio", "provider_id": f"SM{n:032x}", "line": LINE,
        "sender": sender, "body": body, "num_media": 0, "received_at": at,
        "raw": json.dumps(raw, sort_keys=True), "signature_checked": True,
        "decision": "none", "reasons": "[]", "abuse": 0, "signals": "[]", "incident_id": None,
    }  # fmt: skip


def _content(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "message": row["id"], "provider": row["provider"], "provider_id": row["provider_id"],
        "sender": row["sender"], "recipient": LINE, "body": row["body"], "num_media": 0,
        "received_at": row["received_at"], "raw": json.loads(row["raw"]),
        "signature_checked": True, "decision": "none", "reasons": [], "signals": [],
        "incident": None,
    }  # fmt: skip


def fill(service: Service, count: int, batch: int = 5000) -> float:
    """Insert `count` texts and their chained records; returns the seconds it took."""
    began = time.perf_counter()
    prev, seq = hashing.GENESIS, 0
    for low in range(1, count + 1, batch):
        messages, records = [], []
        for n in range(low, min(low + batch, count + 1)):
            at = START + timedelta(milliseconds=150 * n)
            row = _message(n, at)
            messages.append(row)
            seq += 1
            record = _record(seq, n, at, _content(row), prev)
            prev = record["record_hash"]
            records.append(record)
        with service.engine.begin() as conn:
            conn.execute(models.messages.insert(), messages)
            conn.execute(evidence_records.insert(), records)
            conn.execute(update(evidence_head).values(seq=seq, record_hash=prev))
        checkpoints.take(service, "periodic", START + timedelta(milliseconds=150 * seq))
    return time.perf_counter() - began


def _record(seq: int, n: int, at: datetime, content: dict[str, Any], prev: str) -> dict[str, Any]:
    body, salt = hashing.canonical(content), hashing.new_salt()
    digest = hashing.content_digest(salt, body)
    ref, stamp = f"message:{n}", hashing.utc_text(at)
    return {
        "seq": seq, "at": at, "kind": "inbound", "ref": ref, "content_digest": digest,
        "prev_hash": prev, "record_hash": hashing.record_hash(seq, "inbound", ref, stamp, digest, prev),  # noqa: E501
        "salt": salt, "content": body,
    }  # fmt: skip


def verify_as_a_lawyer_would(bundle: Path) -> tuple[float, int]:
    """`antirelou evidence verify BUNDLE` as a process of its own: its seconds and its peak
    memory in bytes (the lawyer's laptop must hold it)."""
    return _own_process(["evidence", "verify", str(bundle)])


def export_as_an_operator_would(url: str, folder: Path) -> tuple[float, int]:
    """`antirelou evidence export --all` as a process of its own, on the same database and
    key: its seconds and its peak memory (the service's small machine must hold it)."""
    config = folder / "export.toml"
    config.write_text(
        f"database_url = {json.dumps(url)}\n"
        f"[[lines]]\nnumber = {json.dumps(LINE)}\n"
        f"[evidence]\nkey_path = {json.dumps(str(folder / 'evidence.key'))}\n",
        encoding="utf-8",
    )
    out = folder / "all-cli.zip"
    seconds, peak = _own_process(
        ["evidence", "export", "--all", "--quiet", "--out", str(out), "--config", str(config)]
    )
    out.unlink()
    return seconds, peak


def _own_process(arguments: list[str]) -> tuple[float, int]:
    command = [str(Path(sys.executable).parent / "antirelou"), *arguments]
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, f"{' '.join(arguments[:2])} succeeds"
    return time.perf_counter() - began, usage.ru_maxrss * 1024


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = action()
    return time.perf_counter() - began, result


# --- the per-text cost ----------------------------------------------------------------------


def _without_evidence() -> Callable[[], None]:
    """Make receive() write no evidence record (whether or not the hooks are applied)."""
    saved = (hooks.inbound, hooks.incident_news)
    hooks.inbound = lambda *a, **k: 0
    hooks.incident_news = lambda *a, **k: None

    def restore() -> None:
        hooks.inbound, hooks.incident_news = saved

    return restore


def _with_evidence() -> Callable[[], None]:
    """receive() with its evidence record: the applied hook, or the same call wrapped in."""
    import inspect

    if "evidence" in inspect.getsource(antirelou.inbound):
        return lambda: None
    original = antirelou.inbound._process

    def process(
        service: Service, conn: Any, sms: InboundSms, message_id: int, now: datetime
    ) -> Any:
        receipt = original(service, conn, sms, message_id, now)
        hooks.inbound(conn, sms, message_id, receipt.decision, receipt.incident_id, now)
        return receipt

    antirelou.inbound._process = process

    def restore() -> None:
        antirelou.inbound._process = original

    return restore


def _words(rng: random.Random, count: int) -> str:
    return " ".join("".join(rng.choices(string.ascii_lowercase, k=5)) for _ in range(count))


def receive_median(service: Service, count: int, rng: random.Random) -> float:
    """Median seconds of receive() over `count` ordinary texts from random new senders
    (random numbers and words: no raid detector fires, no incident opens)."""
    clock = service.clock
    assert isinstance(clock, VirtualClock)
    times = []
    for _ in range(count):
        clock.advance(timedelta(seconds=30))
        sender, body = f"+336{rng.randrange(10**8):08d}", _words(rng, 6)
        sms = InboundSms(
            "twilio", f"RX{rng.getrandbits(128):032x}", sender, LINE, body, {"Body": body}, True
        )
        began = time.perf_counter()
        antirelou.inbound.receive(service, sms)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def overhead(postgres: str, folder: Path, count: int) -> tuple[float, float]:
    """Median receive() time without and with the evidence record, in alternating rounds
    (so a growing database does not favour either side)."""
    rng = random.Random(4)
    with database(postgres, folder, "receive") as url:
        service = service_for(url, folder)
        receive_median(service, 300, rng)  # warm-up
        samples: dict[bool, list[float]] = {False: [], True: []}
        for round_ in range(10):
            for evidence in (False, True) if round_ % 2 else (True, False):
                restore = _with_evidence() if evidence else _without_evidence()
                samples[evidence].append(receive_median(service, count // 10, rng))
                restore()
        service.dispose()
    return statistics.median(samples[False]), statistics.median(samples[True])


# --- the run ----------------------------------------------------------------------------------


def bulk(postgres: str, folder: Path, texts: int, rows: list[tuple[str, str, str]]) -> None:
    """Fill, verify, export and verify the export of `texts` texts; one row per figure."""
    with database(postgres, folder, "bulk") as url:
        service = service_for(url, folder)
        seconds = fill(service, texts)
        rows.append((f"fill {texts:,} texts (bulk inserts, not a target)", f"{seconds:.1f} s", ""))
        seconds, report = timed(lambda: verify_database(service))
        assert report.ok, report.problems
        rows.append(
            (f"verify the log ({report.records:,} records)", f"{seconds:.1f} s", _ok(seconds))
        )
        out = folder / "all.zip"
        seconds, done = timed(lambda: export(service, Selection(everything=True), out))
        rows.append((f"export --all ({done.texts:,} texts)", f"{seconds:.1f} s", _ok(seconds)))
        rows.append(("bundle size", f"{out.stat().st_size / 1e6:.1f} MB", ""))
        seconds, peak = export_as_an_operator_would(url, folder)
        rows.append(
            ("  `antirelou evidence export --all`, its own process", f"{seconds:.1f} s", "")
        )
        rows.append(("  that process's peak memory (RSS)", f"{peak / 1e6:.0f} MB", ""))
        seconds, checked = timed(lambda: verify_bundle(out))
        assert checked.ok, checked.problems
        rows.append(("verify the bundle offline", f"{seconds:.1f} s", _ok(seconds)))
        seconds, peak = verify_as_a_lawyer_would(out)
        rows.append(
            ("  `antirelou evidence verify` on it, its own process", f"{seconds:.1f} s", "")
        )
        rows.append(("  that process's peak memory (RSS)", f"{peak / 1e6:.0f} MB", ""))
        service.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=100_000, help="0: only the per-text cost")
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--postgres", default="", help="a server URL (default: SQLite)")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if args.texts:
            bulk(args.postgres, folder, args.texts, rows)
        without, with_ = overhead(args.postgres, folder, args.appends)
    extra = with_ - without
    ratio = extra / without
    rows.append(("receive() median, no evidence record", f"{without * 1e3:.2f} ms", ""))
    rows.append(("receive() median, with its record", f"{with_ * 1e3:.2f} ms", ""))
    rows.append(("the record's cost (append)", f"{extra * 1e6:.0f} µs", ""))
    verdict = "ok (< 20%)" if ratio < TARGET_OVERHEAD else "MISSED (>= 20%)"
    rows.append(("overhead on receive() (bound on the webhook's)", f"{ratio:+.1%}", verdict))
    _print(rows, "PostgreSQL" if args.postgres else "SQLite (durable, fsync on commit)")
    return 1 if any(row[2].startswith("MISSED") for row in rows) else 0


def _ok(seconds: float) -> str:
    return "ok (< 30 s)" if seconds < TARGET_SECONDS else "MISSED (>= 30 s)"


def _print(rows: list[tuple[str, str, str]], backend: str) -> None:
    width = max(len(row[0]) for row in rows)
    print(f"evidence benchmark on {backend}")
    print(f"{'measure':<{width}}  {'value':>10}  target")
    for label, value, verdict in rows:
        print(f"{label:<{width}}  {value:>10}  {verdict}")


if __name__ == "__main__":
    sys.exit(main())
