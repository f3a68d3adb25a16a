"""Load benchmark: signed Twilio webhooks at rising rates, beside a minimal endpoint.

    .venv/bin/python benchmarks/load.py [--rates 100,300,1000,max] [--duration 5]
                                        [--postgres URL --processes 4] [--clients 2]
    .venv/bin/python benchmarks/load.py --profile 2000      # cProfile of the webhook path

Targets (issue 7, in the README):
  * at least 1,000 inbound texts per second end to end on this 2-core machine;
  * at least 40% of the minimal endpoint's throughput;
  * p99 under 100 ms at 300 texts per second;
  * a forged-signature flood refused at 80% or more of the minimal endpoint's rate, with
    zero rows written.

What runs, all on 127.0.0.1, each in its own process:
  * a fake Twilio REST API answering 201 at once, for the worker's sends;
  * the MINIMAL endpoint: a FastAPI app whose one POST route reads the form and answers
    `<Response/>`, run by uvicorn exactly as `antirelou serve` runs the real app (same
    event loop, HTTP parser, log level, proxy headers): the ceiling of the server stack;
  * `antirelou serve` (SQLite, as on one small machine: the web app, and the worker as its
    child process, or with --worker-thread as a thread of it), or with --postgres N
    `antirelou serve --no-worker` and one `antirelou worker`; the minimal endpoint then
    runs as N processes too. With --intake queued the webhooks
    only park texts and the worker, its own process on SQLite too, decides them;
  * the load: --clients processes, each with its own event loop and raw keep-alive HTTP/1.1
    connections (no client library on the hot path: the client must not be the ceiling).
    Requests are signed before the clock starts.

Each fixed rate is open loop: request i is due at t0 + i/rate whatever happened to the
others, and its latency counts from when it was DUE, so a server that falls behind shows
it in p99 (no coordinated omission). "max" is closed loop: --concurrency connections,
each sending its next request as soon as it has the answer. Senders are 70% new, 30%
texting again; 2% of requests are Twilio re-deliveries of a MessageSid. Between phases the
outbox is left to drain.

Exit status: 0 all targets met and all checks passed, 1 a target missed, 2 a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import multiprocessing
import os
import platform
import pstats
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlencode

from benchkit import (
    ACCOUNT_SID,
    LINE,
    cpu_seconds,
    free_port,
    inbound_form,
    percentile,
    serve_fake_twilio,
)

# Module level: FastAPI resolves the endpoint's (postponed) annotations in these globals.
from fastapi import Request, Response

AUTH_TOKEN = "bench-token"  # noqa: S105 - a throwaway token for a local fake
PUBLIC_URL = "https://decoy.example.org"  # behind a proxy: signatures cover this URL
WEBHOOK_PATH = "/webhooks/twilio/sms"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

THROUGHPUT_TARGET = 1000.0
SHARE_TARGET = 0.40
P99_RATE, P99_TARGET_MS = 300, 100.0
FORGED_SHARE_TARGET = 0.80

BODIES = (
    "Salut, c'est Karim du bar, tu te souviens de moi ?",
    "T'es où ? Je t'attends devant.",
    "Pourquoi tu réponds pas ??",
    "Coucou 😘",
    "On se voit ce soir ?",
    "Tu m'as donné un faux numéro ou quoi",
    "J'ai trop kiffé notre discussion hier soir, on remet ça quand tu veux",
    "",  # an MMS with only a picture has an empty body
)


# --- requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseSpec:
    """What one client process sends in one phase (everything picklable)."""

    name: str
    ports: tuple[int, ...]
    sid_prefix: str  # "SM" + 10 hex digits: run and phase
    sender_base: int
    rate: float | None  # requests per second for the whole phase; None: closed loop
    duration: float
    concurrency: int  # connections of this client process
    client: int  # this process's index...
    clients: int  # ...among this many
    forged: bool = False
    expect: int = 200
    warmup: bool = False


def sender_of(index: int, base: int) -> str:
    """70% of requests come from a new sender, 30% from one seen a few requests earlier.
    +33 61x xx xx xx: valid French mobile numbers, so every new sender is answerable."""
    if index % 10 >= 7:
        index = index // 10 * 10 + index * 31 % 7
    return f"+3361{(base + index) % 10**7:07d}"


def raw_request(index: int, spec: PhaseSpec) -> bytes:
    """Request `index` of the phase as bytes on the wire, signed (or forged)."""
    from antirelou.providers.twilio import compute_signature

    if index % 50 == 49:
        index -= 1  # a Twilio re-delivery of the previous request's sid
    sid = f"{spec.sid_prefix}{index:022x}"
    pairs = inbound_form(sid, sender_of(index, spec.sender_base), BODIES[index % len(BODIES)])
    token = "not-the-token" if spec.forged else AUTH_TOKEN
    signature = compute_signature(PUBLIC_URL + WEBHOOK_PATH, pairs, token)
    body = urlencode(pairs).encode()
    head = (
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "User-Agent: TwilioProxy/1.1\r\nAccept: */*\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# --- the load generator (runs in its own processes) -------------------------------------


@dataclass
class Tally:
    """What one phase measured (merged over the client processes)."""

    sent: int = 0
    ok: int = 0
    elapsed: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    accepted: set[int] = field(default_factory=set)  # request indices answered as expected
    late_ms: float = 0.0  # how late the open-loop schedule ran at worst (client-side)
    exhausted: bool = False  # closed loop ran out of prepared requests
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    prefix: str = ""  # the phase's sid prefix, to find its rows

    def merge(self, other: Tally) -> None:
        self.sent += other.sent
        self.ok += other.ok
        self.elapsed = max(self.elapsed, other.elapsed)
        self.latencies_ms += other.latencies_ms
        self.statuses.update(other.statuses)
        self.errors.update(other.errors)
        self.accepted |= other.accepted
        self.late_ms = max(self.late_ms, other.late_ms)
        self.exhausted = self.exhausted or other.exhausted
        self.client_cpu += other.client_cpu

    @property
    def throughput(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return 1 - self.ok / self.sent if self.sent else 0.0


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, payload: bytes) -> int:
        """Send one request, read the whole answer; its status. Reconnects when needed."""
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            sock = self.writer.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.writer.write(payload)
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length:
                await self.reader.readexactly(length)
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _run_phase(spec: PhaseSpec) -> Tally:
    if spec.rate is not None:
        total = max(1, round(spec.rate * spec.duration))
        mine = list(range(spec.client, total, spec.clients))
    else:  # closed loop: as many as this process could possibly send, prepared up front
        guess = max(2000, int(15000 / spec.clients * spec.duration))
        mine = list(range(spec.client, guess * spec.clients, spec.clients))
    payloads = [raw_request(index, spec) for index in mine]
    connections = [Connection(spec.ports[i % len(spec.ports)]) for i in range(spec.concurrency)]
    tally = Tally()
    cpu0 = time.process_time()

    async def one(conn: Connection, position: int, due: float) -> None:
        tally.sent += 1
        try:
            status = await asyncio.wait_for(conn.exchange(payloads[position]), 30)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            tally.errors[type(exc).__name__] += 1
            return
        finished = time.perf_counter()
        tally.latencies_ms.append((finished - due) * 1000)
        tally.statuses[status] += 1
        if status == spec.expect:
            tally.ok += 1
            tally.accepted.add(mine[position])
        tally.elapsed = finished - started

    started = time.perf_counter()
    if spec.rate is None:
        stop_at = started + spec.duration
        cursor = iter(range(len(payloads)))

        async def lane(conn: Connection) -> None:
            for position in cursor:
                if time.perf_counter() >= stop_at:
                    return
                await one(conn, position, time.perf_counter())
            tally.exhausted = True

        await asyncio.gather(*(lane(conn) for conn in connections))
    else:
        idle: asyncio.Queue[Connection] = asyncio.Queue()
        for conn in connections:
            idle.put_nowait(conn)
        tasks = []

        async def scheduled(position: int, due: float) -> None:
            conn = await idle.get()
            try:
                await one(conn, position, due)
            finally:
                idle.put_nowait(conn)

        for position, index in enumerate(mine):
            due = started + index / spec.rate
            delay = due - time.perf_counter()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            tally.late_ms = max(tally.late_ms, (time.perf_counter() - due) * 1000)
            tasks.append(asyncio.create_task(scheduled(position, due)))
        await asyncio.gather(*tasks)
    for conn in connections:
        conn.close()
    tally.client_cpu = time.process_time() - cpu0
    return tally


def client_process(spec: PhaseSpec, ready: Any, go: Any, results: Any) -> None:
    """One load process: prepare, wait for the common start, run, report."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()

    async def main() -> Tally:
        # Prepare (sign) inside `_run_phase` before `started`: signal readiness first.
        ready.set()
        while not go.is_set():
            await asyncio.sleep(0.001)
        return await _run_phase(spec)

    results.put(asyncio.run(main()))


def run_clients(spec: PhaseSpec, clients: int) -> Tally:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    go = context.Event()
    procs, readies = [], []
    for client in range(clients):
        ready = context.Event()
        mine = PhaseSpec(
            **{
                **spec.__dict__,
                "client": client,
                "clients": clients,
                "rate": spec.rate,
                "concurrency": max(1, spec.concurrency // clients),
            }
        )
        proc = context.Process(target=client_process, args=(mine, ready, go, results))
        proc.start()
        procs.append(proc)
        readies.append(ready)
    for ready in readies:
        ready.wait(60)
    go.set()
    merged = Tally()
    for _ in procs:
        merged.merge(results.get(timeout=spec.duration * 10 + 120))
    for proc in procs:
        proc.join(timeout=30)
    return merged


# --- the servers ------------------------------------------------------------------------


def serve_minimal(port: int) -> None:
    """The ceiling: same framework, same server, same settings; no work at all."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    app = FastAPI(docs_url=None, redoc_url=None)

    @app.post(WEBHOOK_PATH, response_class=Response)
    async def inbound(request: Request) -> Response:
        await request.body()
        return Response(EMPTY_TWIML, media_type="text/xml")

    @app.get("/healthz")
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=True)


class Processes:
    """Child processes, stopped on exit (Ctrl-C and SIGTERM included)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = self.workdir / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTIRELOU_")}
        with log.open("wb") as handle:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C reaches us only; we stop them in order
            )
        self.children.append((name, child, log))
        return child

    def wait_http(self, child: subprocess.Popen[bytes], url: str, timeout: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise SystemExit(f"{child.args!r} exited during start-up:\n{self.logs()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise SystemExit(f"{url} did not answer within {timeout:.0f} s")

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n" + log.read_text(errors="replace")[-3000:]
            for name, _, log in self.children
        )

    def tracebacks(self) -> int:
        return sum(
            log.read_text(errors="replace").count("Traceback") for _, _, log in self.children
        )

    def stop_all(self) -> None:
        for _, child, _ in reversed(self.children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for _, child, _ in reversed(self.children):
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=10)


def write_config(
    path: Path,
    database_url: str,
    fake_port: int,
    defence: str,
    intake: str,
    parallel_sends: int,
    worker_thread: bool = False,
) -> None:
    def q(value: str) -> str:
        return json.dumps(value)  # a JSON string is a valid TOML basic string

    path.write_text(
        f"""database_url = {q(database_url)}
public_url = {q(PUBLIC_URL)}

[[lines]]
number = {q(LINE)}
provider = "twilio"

[budget]
daily_cap = 1000000.0
total = 100000000.0

# "once_per_sender" (default here): thousands of new senders a second IS a raid, and under
# the full defence their replies would be held, sparing the worker. The detectors run on
# every text in both modes; --defence antirelou measures the held path.
[defence]
mode = {q(defence)}

[web]
intake = {q(intake)}

[worker]
parallel_sends = {parallel_sends}
own_process = {json.dumps(not worker_thread)}

[twilio]
account_sid = {q(ACCOUNT_SID)}
auth_token = {q(AUTH_TOKEN)}
api_base_url = {q(f"http://127.0.0.1:{fake_port}")}

[evidence]
key_path = {q(str(path.parent / "evidence.key"))}
""",
        encoding="utf-8",
    )


@dataclass
class Target:
    """One server under test: its processes and ports."""

    name: str
    ports: list[int]
    pids: list[int]

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)


# --- the database -----------------------------------------------------------------------


class Books:
    def __init__(self, database_url: str) -> None:
        from sqlalchemy import create_engine

        self.engine = create_engine(database_url)

    def count(self, sql: str, **params: object) -> int:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return int(conn.execute(text(sql), params).scalar_one())

    def parked(self, prefix: str = "") -> int:
        """Texts parked in the inbox (queued intake): on SQLite, in its file of its own."""
        from sqlalchemy import create_engine, text

        from antirelou.inbox import side_file

        query = text("SELECT count(*) FROM inbox WHERE provider_id LIKE :p")
        path = side_file(self.engine)
        if path is None:
            return self.count(str(query), p=prefix + "%")
        if not path.exists():
            return 0
        engine = create_engine(f"sqlite:///{path}")
        try:
            with engine.connect() as conn:
                return int(conn.execute(query, {"p": prefix + "%"}).scalar_one())
        finally:
            engine.dispose()

    def messages(self, prefix: str = "") -> int:
        """Texts stored, decided or still parked in the inbox (queued intake)."""
        stored = "SELECT count(*) FROM messages WHERE provider_id LIKE :p"
        return self.count(stored, p=prefix + "%") + self.parked(prefix)

    def unsent(self) -> int:
        return self.count("SELECT count(*) FROM replies WHERE status IN ('queued', 'sending')")

    def wait_drained(self, timeout: float) -> tuple[float | None, float | None]:
        """Seconds until every text was decided, and until every reply was sent too."""
        started = time.perf_counter()
        decided: float | None = None
        while time.perf_counter() - started < timeout:
            if decided is None and self.parked() == 0:
                decided = time.perf_counter() - started
            if decided is not None and self.unsent() == 0:
                return decided, time.perf_counter() - started
            time.sleep(0.1)
        return decided, None


# --- report -----------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "not drained" if value is None else f"{value:.1f}"


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    return "\n".join([rule, line(cells[0]), rule, *(line(r) for r in cells[1:]), rule])


def machine_info(database: str, clients: int) -> list[tuple[str, str]]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                cpu_model = row.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("cpus", f"{len(os.sched_getaffinity(0))} ({cpu_model or platform.processor()})"),
        ("load average before", load),
        ("python", platform.python_version()),
        ("database", database),
        ("load processes", str(clients)),
    ]


def row(target: str, rate: str, tally: Tally) -> list[object]:
    lat = tally.latencies_ms
    errors = tally.sent - tally.ok
    wrong = tally.statuses.copy()
    wrong.pop(403 if "forged" in target else 200, None)
    detail = ", ".join(f"{k}: {n}" for k, n in [*wrong.items(), *tally.errors.items()])
    per_request = tally.server_cpu / tally.sent * 1000 if tally.sent else 0.0
    return [
        target,
        rate,
        tally.sent,
        f"{tally.throughput:.0f}",
        f"{percentile(lat, 50):.1f}",
        f"{percentile(lat, 99):.1f}",
        f"{errors} ({tally.error_rate:.1%})" + (f" {{{detail}}}" if detail else ""),
        f"{per_request:.2f}",
        f"{tally.late_ms:.0f}" if tally.late_ms else "-",
    ]


HEADER = (
    "endpoint",
    "offered/s",
    "requests",
    "ok/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "server CPU ms/req",
    "client late ms",
)


# --- main -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="100,300,1000,max", help="comma list; max = closed")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per phase (5)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections (32)")
    parser.add_argument("--clients", type=int, default=2, help="load processes (2)")
    parser.add_argument("--postgres", metavar="URL", help="postgresql+psycopg://... instead")
    parser.add_argument("--processes", type=int, default=0, help="web processes (1; PG: 4)")
    parser.add_argument("--defence", choices=("once_per_sender", "antirelou"), default=None)
    parser.add_argument(
        "--intake",
        choices=("inline", "queued"),
        default="inline",
        help="[web] intake; queued runs the worker as its own process, on SQLite too",
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=0,
        metavar="N",
        help="run the worker process at this niceness (the web process first under load)",
    )
    parser.add_argument("--parallel-sends", type=int, default=8, help="[worker] parallel_sends (8)")
    parser.add_argument(
        "--worker-thread",
        action="store_true",
        help="inline intake: the worker as a thread of the web process ([worker] own_process "
        "= false), not serve's child process",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--profile", type=int, metavar="N", help="profile N webhooks in-process")
    parser.add_argument("--serve-minimal", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--fake-twilio", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument(
        "--fake-latency", type=float, default=0.0, help="seconds the fake Twilio takes (0)"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=120.0, help="seconds to wait for the worker"
    )
    args = parser.parse_args(argv)
    args.defence = args.defence or "once_per_sender"
    args.processes = args.processes or (4 if args.postgres else 1)
    try:
        args.rate_list = [None if r == "max" else float(r) for r in args.rates.split(",")]
    except ValueError:
        parser.error("--rates: numbers or max, comma-separated")
    if not 1 <= args.concurrency <= 512 or not 1 <= args.clients <= 16:
        parser.error("--concurrency 1..512, --clients 1..16")
    if args.duration <= 0 or args.duration > 120:
        parser.error("--duration: 0 to 120 seconds")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_minimal:
        serve_minimal(args.serve_minimal)
        return 0
    if args.fake_twilio:
        serve_fake_twilio(args.fake_twilio, args.fake_latency)
        return 0
    if args.profile:
        return profile(args.profile, args.postgres)

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="antirelou-load-"))
    processes = Processes(workdir)
    try:
        return run(args, workdir, processes)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the servers", file=sys.stderr)
        return 130
    finally:
        processes.stop_all()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def start_servers(
    args: argparse.Namespace, workdir: Path, processes: Processes
) -> tuple[Target, Target, str]:
    antirelou = str(Path(sys.executable).parent / "antirelou")
    this = str(Path(__file__).resolve())
    fake_port = free_port()
    fake_argv = [this, "--fake-twilio", str(fake_port), "--fake-latency", str(args.fake_latency)]
    fake = processes.start("fake-twilio", [sys.executable, *fake_argv])
    database_url = args.postgres or f"sqlite:///{workdir / 'antirelou.db'}"
    config = workdir / "antirelou.toml"
    write_config(
        config,
        database_url,
        fake_port,
        args.defence,
        args.intake,
        args.parallel_sends,
        args.worker_thread,
    )
    separate_worker = bool(args.postgres) or args.intake == "queued"
    if args.postgres:
        upgrade = subprocess.run(
            [antirelou, "db", "upgrade", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if upgrade.returncode != 0:
            raise SystemExit(upgrade.stdout + upgrade.stderr)
    minimal = Target("minimal", [], [])
    real = Target("antirelou", [], [])
    started = []
    for n in range(args.processes):
        port = free_port()
        child = processes.start(
            f"minimal-{n}", [sys.executable, this, "--serve-minimal", str(port)]
        )
        minimal.ports.append(port)
        minimal.pids.append(child.pid)
        started.append((child, port))
        port = free_port()
        argv = [antirelou, "serve", "--config", str(config), "--port", str(port)]
        if separate_worker:
            argv.append("--no-worker")
        child = processes.start(f"antirelou-{n}", argv)
        real.ports.append(port)
        real.pids.append(child.pid)
        started.append((child, port))
        if n == 0 and not args.postgres:
            break  # SQLite: one web process (with the worker inside, unless queued)
    if separate_worker:
        nice = ["nice", "-n", str(args.worker_nice)] if args.worker_nice else []
        worker_argv = [*nice, antirelou, "worker", "--config", str(config)]
        worker = processes.start("antirelou-worker", worker_argv)
        real.pids.append(worker.pid)
    processes.wait_http(fake, f"http://127.0.0.1:{fake_port}/healthz")
    for child, port in started:
        processes.wait_http(child, f"http://127.0.0.1:{port}/healthz")
    return minimal, real, database_url


def run(args: argparse.Namespace, workdir: Path, processes: Processes) -> int:
    if args.postgres:
        database = f"PostgreSQL, {args.processes} web processes + 1 worker"
    elif args.intake == "queued":
        database = "SQLite, 1 web process + 1 worker process"
    elif args.worker_thread:
        database = "SQLite, 1 process (web app + worker thread)"
    else:
        database = "SQLite, 1 web process + its worker process"
    database += f", {args.intake} intake"
    print("antirelou load benchmark")
    print(table(machine_info(database, args.clients), ("machine", "")))
    minimal, real, database_url = start_servers(args, workdir, processes)
    books = Books(database_url)
    run_id = secrets.token_hex(4)
    base = random.randrange(10**7)
    phase_no = 0

    def phase(
        target: Target, rate: float | None, *, forged: bool = False, warmup: bool = False
    ) -> Tally:
        nonlocal phase_no
        phase_no += 1
        spec = PhaseSpec(
            name=target.name,
            ports=tuple(target.ports),
            sid_prefix=f"SM{run_id}{phase_no:02x}",
            sender_base=base + phase_no * 300_000,
            rate=rate,
            duration=1.0 if warmup else args.duration,
            concurrency=args.concurrency,
            client=0,
            clients=1 if warmup else args.clients,
            forged=forged,
            expect=403 if forged else 200,
            warmup=warmup,
        )
        cpu0 = target.cpu()
        tally = run_clients(spec, spec.clients)
        tally.server_cpu = target.cpu() - cpu0
        tally.prefix = spec.sid_prefix
        return tally

    results: dict[tuple[str, str], Tally] = {}
    drains: list[tuple[str, tuple[float | None, float | None]]] = []
    print(f"\nphases of {args.duration:.0f} s, {args.concurrency} connections, rates {args.rates}")
    for target in (minimal, real):
        phase(target, None, warmup=True)
        if target is real:
            books.wait_drained(args.drain_timeout)
        for rate in args.rate_list:
            label = "max" if rate is None else f"{rate:.0f}"
            tally = phase(target, rate)
            results[(target.name, label)] = tally
            print(table([row(target.name, label, tally)], HEADER).splitlines()[3], flush=True)
            if target is real:
                drains.append((label, books.wait_drained(args.drain_timeout)))
    before = books.messages()
    forged = phase(real, None, forged=True)
    after = books.messages()
    forged_rows = books.messages(forged.prefix)

    print()
    rows = [row(name, label, tally) for (name, label), tally in results.items()]
    rows.append(row("antirelou, forged", "max", forged))
    print(table(rows, HEADER))
    print("after each antirelou phase, every text decided / every reply sent, in (s):")
    for label, (decided, answered) in drains:
        print(f"    {label}: {_seconds(decided)} / {_seconds(answered)}")

    # Checks: every text answered 200 is stored once; nothing else is.
    checks: list[tuple[str, str, bool]] = []
    for (name, label), tally in results.items():
        if name != "antirelou":
            continue
        stored = books.messages(tally.prefix)
        distinct = len({i - 1 if i % 50 == 49 else i for i in tally.accepted})
        checks.append(
            (
                f"{label}: rows == distinct sids answered 200",
                f"{stored} == {distinct}",
                stored == distinct or (stored >= distinct and tally.ok < tally.sent),
            )
        )
    tracebacks = processes.tracebacks()
    checks.append(("no traceback in any server log", str(tracebacks), tracebacks == 0))

    # Targets.
    best = results.get(("antirelou", "max"))
    ceiling = results.get(("minimal", "max"))
    at_300 = results.get(("antirelou", f"{P99_RATE}"))
    share = best.throughput / ceiling.throughput if best and ceiling and ceiling.throughput else 0
    forged_share = forged.throughput / ceiling.throughput if ceiling and ceiling.throughput else 0
    targets = [
        (
            f">= {THROUGHPUT_TARGET:.0f} inbound texts/s end to end",
            f"{best.throughput:.0f}/s at max" if best else "no max phase",
            best is not None and best.throughput >= THROUGHPUT_TARGET and best.error_rate == 0,
        ),
        (
            f">= {SHARE_TARGET:.0%} of the minimal endpoint",
            f"{share:.0%} ({ceiling.throughput:.0f}/s minimal)" if ceiling else "no max phase",
            share >= SHARE_TARGET,
        ),
        (
            f"p99 < {P99_TARGET_MS:.0f} ms at {P99_RATE} texts/s",
            f"{percentile(at_300.latencies_ms, 99):.1f} ms" if at_300 else "rate not run",
            at_300 is not None
            and percentile(at_300.latencies_ms, 99) < P99_TARGET_MS
            and at_300.error_rate == 0,
        ),
        (
            f"forged flood refused at >= {FORGED_SHARE_TARGET:.0%} of minimal, 0 writes",
            f"{forged.throughput:.0f}/s = {forged_share:.0%}; rows {before} -> {after}, "
            f"{forged_rows} forged",
            forged_share >= FORGED_SHARE_TARGET
            and after == before
            and forged_rows == 0
            and forged.error_rate == 0,
        ),
    ]
    print()
    print(
        table(
            [(n, m, "PASS" if ok else "FAIL") for n, m, ok in targets]
            + [(n, m, "ok" if ok else "FAILED") for n, m, ok in checks],
            ("target / check", "measured", "result"),
        )
    )
    books.engine.dispose()
    if not all(ok for _, _, ok in checks):
        print(processes.logs() if args.keep else "(rerun with --keep for the logs)")
        return 2
    return 0 if all(ok for _, _, ok in targets) else 1


# --- profile ----------------------------------------------------------------------------


def profile(count: int, postgres: str | None) -> int:
    """cProfile the webhook path in-process (ASGI app called directly, no sockets):
    signature check, parsing, receive() on SQLite (or --postgres), on the event loop's
    thread and the intake's writer thread together; prints the hot spots."""
    from antirelou.clock import SystemClock
    from antirelou.db import make_engine
    from antirelou.migrate import upgrade
    from antirelou.service import Service
    from antirelou.settings import load_settings
    from antirelou.web.app import create_app

    writer = _profile_intake_thread()
    workdir = Path(tempfile.mkdtemp(prefix="antirelou-profile-"))
    try:
        config = workdir / "antirelou.toml"
        database_url = postgres or f"sqlite:///{workdir / 'antirelou.db'}"
        write_config(config, database_url, 9, "once_per_sender", "inline", 1)
        settings = load_settings(config, environ={})
        service = Service(settings, make_engine(settings.database_url), SystemClock())
        upgrade(service.engine)
        service.sync_lines()
        app = create_app(service)
        spec = PhaseSpec("profile", (0,), f"SM{secrets.token_hex(5)}", 0, None, 0, 1, 0, 1)
        requests = [raw_request(i, spec).split(b"\r\n\r\n", 1) for i in range(count)]
        asyncio.run(_drive(app, requests[:50]))  # warm-up
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        statuses = asyncio.run(_drive(app, requests[50:]))
        profiler.disable()
        elapsed = time.perf_counter() - started
        service.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    done = count - 50
    print(
        f"{done} webhooks in {elapsed:.2f} s under cProfile = {elapsed / done * 1000:.2f} ms each"
    )
    print(f"statuses {dict(statuses)}")
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.add(writer)  # the intake thread's (or pool's) share: receive() and commits
        stats.strip_dirs().sort_stats(key).print_stats(30)
        print(f"\n--- top 30 by {key}\n" + "\n".join(out.getvalue().splitlines()[4:]))
    return 0


def _profile_intake_thread() -> cProfile.Profile:
    """cProfile sees one thread, and inline intake stores and decides texts on a writer
    thread of its own (web/intake.py) on SQLite, on the thread pool on PostgreSQL: profile
    each of its commits, or each text, into a second profiler."""
    from antirelou.web import intake
    from antirelou.web.state import AppState

    writer = cProfile.Profile()
    commit = intake.Intake._commit

    def profiled(self: intake.Intake, batch: Any) -> None:
        writer.enable()
        try:
            commit(self, batch)
        finally:
            writer.disable()

    intake.Intake._commit = profiled  # type: ignore[method-assign]

    # PostgreSQL: each text is received on the thread pool instead (one at a time here).
    receive = AppState._receive_in_turn

    def received(self: AppState, sms: Any) -> Any:
        writer.enable()
        try:
            return receive(self, sms)
        finally:
            writer.disable()

    AppState._receive_in_turn = received  # type: ignore[method-assign]
    return writer


async def _drive(app: Any, requests: Sequence[list[bytes]]) -> Counter[int]:
    statuses: Counter[int] = Counter()
    for head, body in requests:
        headers = []
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower(), value.strip()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": WEBHOOK_PATH,
            "raw_path": WEBHOOK_PATH.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
        }
        messages = iter([{"type": "http.request", "body": body, "more_body": False}])

        async def receive(messages: Iterator[dict[str, Any]] = messages) -> dict[str, Any]:
            return next(messages, {"type": "http.disconnect"})

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] += 1

        await app(scope, receive, send)
    return statuses


if __name__ == "__main__":
    sys.exit(main())
