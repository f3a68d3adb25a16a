"""Benchmark the Twilio inbound webhook, end to end, against the core-service targets.

    .venv/bin/python benchmarks/webhook.py [--requests 5000] [--concurrency 24]
                                           [--postgres postgresql+psycopg://...]

Targets (core-service issue):
  * a signed webhook answered in under 20 ms median;
  * at least 500 inbound texts per second through the whole path on SQLite.

What runs, all on 127.0.0.1:
  * a fake Twilio REST API (this file, `--fake-twilio PORT`, separate process) answering
    201 {"sid": "SM..."} so that the worker's sends are real HTTP calls;
  * `antirelou serve` (separate process: web app + in-process worker) on a temporary TOML
    configuration: one Twilio line, SQLite in a temporary directory (or --postgres),
    budget caps high enough that every eligible text gets its reply;
  * this process, sending signed form POSTs to /webhooks/twilio/sms like Twilio does.

Phases: warm-up (not timed), (1) latency: sequential requests, one at a time;
(2) throughput: --requests requests with --concurrency in flight, then database checks and
the time the worker needs to drain the outbox; (3) forged signatures: the same load with a
wrong X-Twilio-Signature, which must all be refused with 403 and write nothing.

Exit status: 0 all targets met and all checks passed, 1 a target missed, 2 a check failed.
This is a script run on purpose (`make bench`), not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlencode

import httpx
import phonenumbers
from benchkit import (
    ACCOUNT_SID,
    LINE,
    cpu_seconds,
    free_port,
    inbound_form,
    percentile,
    serve_fake_twilio,
)
from sqlalchemy import Engine, bindparam, create_engine, text

from antirelou.providers.twilio import compute_signature

AUTH_TOKEN = "bench-token"  # noqa: S105 - a throwaway token for a local fake
WEBHOOK_PATH = "/webhooks/twilio/sms"

LATENCY_TARGET_MS = 20.0
THROUGHPUT_TARGET = 500.0

BODIES = (
    "Salut, c'est Karim du bar, tu te souviens de moi ?",
    "T'es où ? Je t'attends devant.",
    "Pourquoi tu réponds pas ??",
    "Coucou 😘",
    "On se voit ce soir ?",
    "Tu m'as donné un faux numéro ou quoi",
    "Allô ? Réponds stp",
    "J'ai trop kiffé notre discussion hier soir, on remet ça quand tu veux",
    "Bonsoir mademoiselle",
    "",  # an MMS with only a picture has an empty body
)


# --- requests -------------------------------------------------------------------------


@dataclass(frozen=True)
class Inbound:
    """One prepared webhook call: everything signed before the clock starts."""

    sid: str
    sender: str
    body: bytes
    signature: str


def french_mobiles(count: int, rng: random.Random) -> list[str]:
    """`count` distinct random French mobile numbers (+336 followed by 8 digits), valid
    ones only: the service rightly never answers an unallocated range."""
    numbers: set[str] = set()
    while len(numbers) < count:
        number = f"+336{rng.randrange(10**8):08d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(number)):
            numbers.add(number)
    return sorted(numbers)


def prepare(
    url: str, sid_prefix: str, count: int, senders: Sequence[str], rng: random.Random
) -> list[Inbound]:
    """`count` signed requests, senders drawn with repeats from `senders`."""
    requests = []
    for _ in range(count):
        sid = sid_prefix + secrets.token_hex(16 - len(sid_prefix) // 2 + 1)
        sid = sid[: 2 + 32]
        sender = rng.choice(senders)
        pairs = inbound_form(sid, sender, rng.choice(BODIES))
        signature = compute_signature(url, pairs, AUTH_TOKEN)
        requests.append(Inbound(sid, sender, urlencode(pairs).encode(), signature))
    return requests


def forge(requests: Sequence[Inbound]) -> list[Inbound]:
    """The same requests signed with the wrong token."""
    return [
        Inbound(r.sid, r.sender, r.body, compute_signature("x", [], "not-the-token"))
        for r in requests
    ]


# --- the load -------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one phase measured."""

    sent: int = 0
    elapsed: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    exceptions: Counter[str] = field(default_factory=Counter)
    accepted_sids: set[str] = field(default_factory=set)
    accepted_senders: set[str] = field(default_factory=set)
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    fake_cpu: float = 0.0

    @property
    def accepted(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def errors(self) -> int:
        return self.sent - self.accepted

    def rate(self, count: int) -> float:
        return count / self.elapsed if self.elapsed > 0 else 0.0


HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "User-Agent": "TwilioProxy/1.1",
    "Accept": "*/*",
}


async def post(client: httpx.AsyncClient, request: Inbound, outcome: Outcome) -> None:
    headers = {**HEADERS, "X-Twilio-Signature": request.signature}
    started = time.perf_counter()
    try:
        response = await client.post(WEBHOOK_PATH, content=request.body, headers=headers)
    except httpx.HTTPError as exc:
        outcome.exceptions[type(exc).__name__] += 1
        return
    finally:
        outcome.sent += 1
    outcome.latencies_ms.append((time.perf_counter() - started) * 1000)
    outcome.statuses[response.status_code] += 1
    if response.is_success:
        outcome.accepted_sids.add(request.sid)
        outcome.accepted_senders.add(request.sender)


async def run_load(
    base_url: str, requests: Sequence[Inbound], concurrency: int, deadline: float
) -> Outcome:
    """Send `requests` with at most `concurrency` in flight; stop early at `deadline` s."""
    outcome = Outcome()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(30.0)
    pending = iter(requests)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:
        stop_at = time.monotonic() + deadline

        async def lane() -> None:
            for request in pending:
                if time.monotonic() > stop_at:
                    return
                await post(client, request, outcome)

        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        outcome.elapsed = time.perf_counter() - started
    return outcome


# --- processes ------------------------------------------------------------------------


class Processes:
    """Child processes, stopped on exit (Ctrl-C and SIGTERM included)."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], log: Path, env: dict[str, str]) -> int:
        with log.open("wb") as handle:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C reaches us only; we stop them in order
            )
        self.children.append((name, child))
        return child.pid

    def alive(self, pid: int) -> bool:
        return any(c.pid == pid and c.poll() is None for _, c in self.children)

    def stop_all(self) -> None:
        for _name, child in reversed(self.children):
            if child.poll() is None:
                child.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
        for _name, child in reversed(self.children):
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=5)
        self.children.clear()


def wait_http(url: str, pid: int, processes: Processes, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.alive(pid):
            raise SystemExit(f"process {pid} exited during start-up; its log:\n{tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s; log:\n{tail(log)}")


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def child_env() -> dict[str, str]:
    """Our environment minus ANTIRELOU_*: they would override the benchmark's config."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ANTIRELOU_")}


def write_config(
    path: Path, database_url: str, port: int, fake_port: int, parallel_sends: int
) -> None:
    def q(value: str) -> str:
        return json.dumps(value)  # a JSON string is a valid TOML basic string

    path.write_text(
        f"""database_url = {q(database_url)}
public_url = {q(f"http://127.0.0.1:{port}")}

[[lines]]
number = {q(LINE)}
provider = "twilio"

[budget]
daily_cap = 1000000.0
total = 10000000.0

# Thousands of new senders in seconds IS a raid: under the default mode their replies are
# held (correctly) and the checks below could not count one reply per sender. The
# detectors still run on every text (the ten bodies cluster as copy-paste, as they
# should); only acting on them is off. (An earlier version also raised
# cluster_min_senders out of reach, which made every text count thousands of cluster
# rows: the copy-paste count stops at its threshold, and that threshold is the real one.)
[defence]
mode = "once_per_sender"

[twilio]
account_sid = {q(ACCOUNT_SID)}
auth_token = {q(AUTH_TOKEN)}
api_base_url = {q(f"http://127.0.0.1:{fake_port}")}

[web]
host = "127.0.0.1"
port = {port}

[worker]
parallel_sends = {parallel_sends}
""",
        encoding="utf-8",
    )


# --- the database ---------------------------------------------------------------------


def count(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def open_replies(engine: Engine) -> int:
    return count(engine, "SELECT count(*) FROM replies WHERE status IN ('queued', 'sending')")


def known_senders(engine: Engine, numbers: Sequence[str]) -> set[str]:
    """Senders already in the database (a reused PostgreSQL): they get no new reply."""
    found: set[str] = set()
    query = text("SELECT number FROM senders WHERE line = :line AND number IN :numbers")
    query = query.bindparams(bindparam("numbers", expanding=True))
    with engine.connect() as conn:
        for start in range(0, len(numbers), 500):
            chunk = list(numbers[start : start + 500])
            found |= {row[0] for row in conn.execute(query, {"line": LINE, "numbers": chunk})}
    return found


def wait_drained(engine: Engine, timeout: float) -> float | None:
    """Seconds until no reply is queued or being sent, or None after `timeout`."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if open_replies(engine) == 0:
            return time.perf_counter() - started
        time.sleep(0.05)
    return None


def phase_rows(engine: Engine, prefix: str) -> tuple[int, int, int, int]:
    """(messages, replies, distinct reply recipients, replies sent) for one phase's sids."""
    like = {"pattern": prefix + "%"}
    messages = count(
        engine, "SELECT count(*) FROM messages WHERE provider_id LIKE :pattern", **like
    )
    join = "FROM replies r JOIN messages m ON m.id = r.message_id WHERE m.provider_id LIKE :pattern"
    replies = count(engine, f"SELECT count(*) {join}", **like)
    recipients = count(engine, f"SELECT count(DISTINCT r.recipient) {join}", **like)
    sent = count(engine, f"SELECT count(*) {join} AND r.status = 'sent'", **like)
    return messages, replies, recipients, sent


def send_span(engine: Engine, prefix: str) -> float:
    """Seconds between the first and the last reply the worker sent for a phase."""
    with engine.connect() as conn:
        first, last = conn.execute(
            text(
                "SELECT min(r.sent_at), max(r.sent_at) FROM replies r "
                "JOIN messages m ON m.id = r.message_id WHERE m.provider_id LIKE :pattern"
            ),
            {"pattern": prefix + "%"},
        ).one()
    if first is None or last is None:
        return 0.0
    if isinstance(first, str):  # SQLite hands text back through a plain text() query
        from datetime import datetime

        first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
    return float((last - first).total_seconds())


# --- report ---------------------------------------------------------------------------


def machine_info(database: str) -> list[tuple[str, str]]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                cpu_model = row.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        ("nproc", f"{usable} (os.cpu_count {os.cpu_count()})"),
        ("cpu", cpu_model or platform.processor() or "?"),
        ("python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("platform", platform.platform()),
        ("sqlite", sqlite3.sqlite_version),
        ("database", database),
    ]


@dataclass
class Check:
    name: str
    measured: str
    ok: bool


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([rule, line(header), rule, *(line(r) for r in rows), rule])


def describe(outcome: Outcome) -> list[str]:
    lat = outcome.latencies_ms
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(outcome.statuses.items()))
    errors = ", ".join(f"{k}: {n}" for k, n in outcome.exceptions.items())
    per_request = outcome.server_cpu / outcome.sent * 1000 if outcome.sent else 0.0
    return [
        f"    requests {outcome.sent} in {outcome.elapsed:.2f} s = "
        f"{outcome.rate(outcome.sent):.0f} req/s; statuses {{{statuses}}}"
        + (f"; exceptions {{{errors}}}" if errors else ""),
        f"    latency ms: p50 {percentile(lat, 50):.2f}  p90 {percentile(lat, 90):.2f}  "
        f"p99 {percentile(lat, 99):.2f}  max {max(lat, default=float('nan')):.2f}",
        f"    CPU s: server {outcome.server_cpu:.2f} ({per_request:.2f} ms/request), "
        f"fake Twilio {outcome.fake_cpu:.2f}, load generator {outcome.client_cpu:.2f}",
    ]


# --- main -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="throughput phase size")
    parser.add_argument("--concurrency", type=int, default=24, help="requests in flight (16-32)")
    parser.add_argument("--latency-requests", type=int, default=500, help="sequential phase size")
    parser.add_argument("--postgres", metavar="URL", help="postgresql+psycopg://... instead")
    parser.add_argument("--workdir", type=Path, help="where the temporary files go (/tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="seconds (120)")
    parser.add_argument("--phase-timeout", type=float, default=300.0, help="seconds (300)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for senders")
    parser.add_argument("--parallel-sends", type=int, default=8, help="[worker] parallel_sends")
    parser.add_argument("--fake-twilio", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--fake-latency", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--fake-slow-every", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--fake-slow-latency", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.requests < 1 or args.latency_requests < 1:
        parser.error("--requests and --latency-requests must be positive")
    if not 1 <= args.concurrency <= 256:
        parser.error("--concurrency must be between 1 and 256")
    if args.requests > 100_000:
        parser.error("--requests is capped at 100000 to keep the load bounded")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.fake_twilio:
        slow = (args.fake_slow_every, args.fake_slow_latency)
        serve_fake_twilio(args.fake_twilio, args.fake_latency, *slow)
        return 0
    processes = Processes()

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="antirelou-bench-", dir=args.workdir))
    try:
        return run(args, workdir, processes)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the server", file=sys.stderr)
        return 130
    finally:
        processes.stop_all()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path, processes: Processes) -> int:
    bin_dir = Path(sys.executable).parent
    antirelou = str(bin_dir / "antirelou")
    env = child_env()
    port, fake_port = free_port(), free_port()
    database_url = args.postgres or f"sqlite:///{workdir / 'antirelou.db'}"
    database = "PostgreSQL" if args.postgres else f"SQLite file in {workdir}"
    config = workdir / "antirelou.toml"
    write_config(config, database_url, port, fake_port, args.parallel_sends)
    base_url = f"http://127.0.0.1:{port}"

    print("antirelou webhook benchmark")
    print(table(machine_info(database), ("machine", "")))

    fake_log = workdir / "fake-twilio.log"
    fake_pid = processes.start(
        "fake-twilio",
        [sys.executable, str(Path(__file__).resolve()), "--fake-twilio", str(fake_port)],
        fake_log,
        env,
    )
    wait_http(f"http://127.0.0.1:{fake_port}/healthz", fake_pid, processes, fake_log)

    if args.postgres:
        upgrade = subprocess.run(
            [antirelou, "db", "upgrade", "--config", str(config)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if upgrade.returncode != 0:
            print(upgrade.stdout + upgrade.stderr, file=sys.stderr)
            return 2
    server_log = workdir / "server.log"
    server_pid = processes.start(
        "antirelou",
        [antirelou, "serve", "--config", str(config), "--port", str(port)],
        server_log,
        env,
    )
    wait_http(f"{base_url}/healthz", server_pid, processes, server_log)
    engine = create_engine(database_url)

    # Requests, prepared and signed before any clock starts. A run id in every sid lets
    # the checks count this run's rows only (a reused PostgreSQL keeps older ones).
    rng = random.Random(args.seed)
    run_id = secrets.token_hex(4)
    url = base_url + WEBHOOK_PATH
    warm_pool, latency_pool, load_pool = (
        french_mobiles(n, rng)
        for n in (20, args.latency_requests, max(1, int(args.requests * 0.7)))
    )
    load_pool = sorted(set(load_pool) - set(latency_pool) - set(warm_pool))
    phases = {name: f"SM{run_id}{tag}" for name, tag in (("warm", "00"), ("lat", "01"))}
    phases |= {"load": f"SM{run_id}02", "forged": f"SM{run_id}03"}
    warm = prepare(url, phases["warm"], 20, warm_pool, rng)
    latency = prepare(url, phases["lat"], args.latency_requests, latency_pool, rng)
    load = prepare(url, phases["load"], args.requests, load_pool, rng)
    # A few Twilio retries: the same MessageSid delivered again (must be stored once).
    for index in rng.sample(range(len(load)), k=len(load) // 50):
        load.insert(rng.randrange(len(load)), load[index])
    forged = forge(prepare(url, phases["forged"], args.requests, load_pool, rng))
    already_known = known_senders(engine, load_pool) if args.postgres else set()

    def measured(coro_factory: object) -> Outcome:
        server0, fake0, client0 = (
            cpu_seconds(server_pid),
            cpu_seconds(fake_pid),
            time.process_time(),
        )
        outcome: Outcome = asyncio.run(coro_factory())  # type: ignore[operator]
        outcome.server_cpu = cpu_seconds(server_pid) - server0
        outcome.fake_cpu = cpu_seconds(fake_pid) - fake0
        outcome.client_cpu = time.process_time() - client0
        return outcome

    deadline = args.phase_timeout
    print(f"\nwarm-up: {len(warm)} requests")
    measured(lambda: run_load(base_url, warm, 1, deadline))
    wait_drained(engine, args.drain_timeout)

    print(f"phase 1, latency: {len(latency)} sequential signed requests")
    lat = measured(lambda: run_load(base_url, latency, 1, deadline))
    print("\n".join(describe(lat)))
    wait_drained(engine, args.drain_timeout)

    print(
        f"phase 2, throughput: {len(load)} signed requests ({len(load) - args.requests} "
        f"Twilio retries of a sid), {args.concurrency} in flight"
    )
    before_load = time.perf_counter()
    thr = measured(lambda: run_load(base_url, load, args.concurrency, deadline))
    drain_after = wait_drained(engine, args.drain_timeout)
    drained_at = time.perf_counter()
    print("\n".join(describe(thr)))
    stored, replies, recipients, sent = phase_rows(engine, phases["load"])
    eligible = len(thr.accepted_senders - already_known)
    span = send_span(engine, phases["load"])
    reply_rate = sent / (drained_at - before_load) if drain_after is not None else 0.0
    print(
        f"    database: {stored} messages for {len(thr.accepted_sids)} distinct sids accepted; "
        f"{replies} replies ({recipients} recipients) for {eligible} eligible senders; "
        f"{sent} sent"
    )
    drained = "not drained" if drain_after is None else f"{drain_after:.2f} s"
    print(
        f"    outbox drained {drained} after the last webhook; replies/s "
        f"{reply_rate:.0f} (start of load to drained), worker send span {span:.2f} s "
        f"= {sent / span if span else 0:.0f} sends/s"
    )

    rows_before = count(engine, "SELECT count(*) FROM messages")
    print(f"phase 3, forged signatures: {len(forged)} requests, {args.concurrency} in flight")
    bad = measured(lambda: run_load(base_url, forged, args.concurrency, deadline))
    print("\n".join(describe(bad)))
    rows_after = count(engine, "SELECT count(*) FROM messages")
    forged_rows = phase_rows(engine, phases["forged"])[0]
    refused = bad.statuses.get(403, 0)

    server_alive = processes.alive(server_pid)
    engine.dispose()
    errors_in_log = tail(server_log, 10_000).count("Traceback")

    targets = [
        Check(
            f"signed webhook median < {LATENCY_TARGET_MS:.0f} ms",
            f"p50 {percentile(lat.latencies_ms, 50):.2f} ms "
            f"(p90 {percentile(lat.latencies_ms, 90):.2f}, "
            f"p99 {percentile(lat.latencies_ms, 99):.2f}, "
            f"max {max(lat.latencies_ms, default=float('nan')):.2f})",
            bool(lat.latencies_ms) and percentile(lat.latencies_ms, 50) < LATENCY_TARGET_MS,
        ),
        Check(
            f">= {THROUGHPUT_TARGET:.0f} inbound texts/s, whole path"
            + (" (target is for SQLite)" if args.postgres else " on SQLite"),
            f"{thr.rate(thr.accepted):.0f} texts/s accepted "
            f"({thr.accepted}/{thr.sent} in {thr.elapsed:.2f} s, c={args.concurrency})",
            thr.rate(thr.accepted) >= THROUGHPUT_TARGET,
        ),
    ]
    checks = [
        Check(
            "no error in latency and load phases",
            f"{lat.errors + thr.errors} errors",
            lat.errors + thr.errors == 0,
        ),
        Check(
            "messages rows == distinct sids accepted",
            f"{stored} == {len(thr.accepted_sids)}",
            stored == len(thr.accepted_sids),
        ),
        Check(
            "one reply per distinct eligible sender",
            f"{replies} replies, {recipients} recipients, {eligible} senders",
            replies == recipients == eligible,
        ),
        Check(
            "worker sent every reply (bounded wait)",
            f"{sent}/{replies} sent, outbox {drained}",
            drain_after is not None and sent == replies,
        ),
        Check(
            "forged signatures refused with 403",
            f"{refused}/{len(forged)} refused, {bad.rate(refused):.0f} refusals/s",
            refused == len(forged),
        ),
        Check(
            "forged requests wrote nothing",
            f"{forged_rows} rows for forged sids, messages {rows_before} -> {rows_after}",
            forged_rows == 0 and rows_after == rows_before,
        ),
        Check(
            "server alive, no traceback in its log",
            f"alive={server_alive}, tracebacks={errors_in_log}",
            server_alive and errors_in_log == 0,
        ),
    ]
    print()
    print(
        table(
            [(c.name, c.measured, "PASS" if c.ok else "MISS") for c in targets]
            + [(c.name, c.measured, "ok" if c.ok else "FAIL") for c in checks],
            ("target / check", "measured", "result"),
        )
    )
    if not all(c.ok for c in checks):
        print(f"server log: {server_log}" if args.keep else "(rerun with --keep for the logs)")
        return 2
    return 0 if all(c.ok for c in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
