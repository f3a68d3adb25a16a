"""How fast one worker sends replies when the provider takes its time to answer.

    .venv/bin/python benchmarks/sends.py [--replies 200] [--latency 0.25]
                                         [--parallel 1,4,8] [--postgres URL]
                                         [--slow-every 25 --slow-latency 5] [--live]

A real SMS API answers in a few hundred milliseconds (Twilio's Messages API from Europe:
roughly 150-400 ms). A worker that waits for each answer before the next call sends a few
replies per second whatever the machine: after a TV mention, the thousandth genuine tester
would wait minutes for his reply. `[worker] parallel_sends` keeps several calls in flight.

What runs, on 127.0.0.1: a fake Twilio Messages API (`benchmarks/webhook.py --fake-twilio`,
a process of its own) that answers every POST after --latency seconds; then, for each
--parallel value, a fresh SQLite database (or the --postgres one) where --replies texts
from as many senders were received, and one `Worker` draining the outbox over real HTTP.
With --slow-every N the fake takes --slow-latency seconds over every Nth POST (an API that
hangs now and then, up to the sender's timeout). By default the worker drains the outbox
in rounds (worker.drain(), as tests and replays do); --live runs the loop `antirelou
worker` runs (run_forever), which claims more as soon as a sending thread is free.
Printed per setting: replies per second, the median, 95th percentile and last wait of a
reply (from the worker's start to its recorded send), and whether each reply was sent
exactly once. Exit status 1 if a reply was not sent exactly once.
"""

from __future__ import annotations

import argparse
import itertools
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from benchkit import ACCOUNT_SID, LINE, free_port
from sqlalchemy import func, select

from antirelou import models
from antirelou.clock import SystemClock
from antirelou.db import make_engine
from antirelou.inbound import receive
from antirelou.migrate import upgrade
from antirelou.phone import SenderKind, classify
from antirelou.providers.base import InboundSms
from antirelou.providers.registry import build_senders
from antirelou.service import Service
from antirelou.settings import Settings, settings_from_mapping
from antirelou.worker import Worker


def start_fake(
    port: int, latency: float, slow_every: int = 0, slow_latency: float = 0.0
) -> subprocess.Popen[bytes]:
    script = Path(__file__).with_name("webhook.py")
    argv = [sys.executable, str(script), "--fake-twilio", str(port)]
    argv += ["--fake-latency", str(latency), "--fake-slow-every", str(slow_every)]
    fake = subprocess.Popen([*argv, "--fake-slow-latency", str(slow_latency)])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
            return fake
        except httpx.HTTPError:
            time.sleep(0.1)
    fake.kill()
    raise SystemExit("the fake Twilio did not start")


def settings_for(database_url: str, port: int, parallel: int, key: Path) -> Settings:
    return settings_from_mapping(
        {
            "database_url": database_url,
            "public_url": "https://decoy.example.org",
            "lines": [{"number": LINE, "provider": "twilio"}],
            "twilio": {
                "account_sid": ACCOUNT_SID,
                "auth_token": "bench-token",
                "api_base_url": f"http://127.0.0.1:{port}",
            },
            "budget": {"daily_cap": 1_000_000.0, "total": 10_000_000.0},
            "worker": {"parallel_sends": parallel, "batch": 50},
            "evidence": {"key_path": str(key)},
        }
    )


def senders(count: int) -> list[str]:
    """Answerable French mobiles far apart (no block of 100 numbers looks like a raid), new
    to a reused PostgreSQL database (one reply per sender). Some +336 ranges are not
    assigned: those numbers would get no reply, so they are skipped."""
    base = 10_000_000 + secrets.randbelow(80_000_000)
    found: list[str] = []
    for i in itertools.count():
        number = f"+336{(base + i * 7_919) % 100_000_000:08d}"
        if classify(number).kind is SenderKind.ANSWERABLE:
            found.append(number)
        if len(found) == count:
            return found
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Result:
    sent: int  # replies sent
    elapsed: float  # seconds from the worker's start to its last reply
    statuses: dict[str, int]  # the replies' statuses at the end
    waits: list[float]  # seconds from the worker's start to each reply's recorded send


def run_worker(worker: Worker, live: bool, count_sent: Callable[[], int], replies: int) -> None:
    """Rounds until nothing is due, or the live loop until every reply is sent (or 300 s)."""
    if not live:
        worker.drain()
        return
    stop = threading.Event()
    loop = threading.Thread(target=worker.run_forever, args=(stop,), name="worker")
    loop.start()
    deadline = time.monotonic() + 300
    while count_sent() < replies and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    worker.nudge()
    loop.join()


def run_one(
    database_url: str, port: int, parallel: int, replies: int, workdir: Path, live: bool
) -> Result:
    settings = settings_for(database_url, port, parallel, workdir / "evidence.key")
    engine = make_engine(database_url)
    upgrade(engine)
    service = Service(settings, engine, SystemClock())
    service.sync_lines()
    tag = f"SMsends{parallel:02d}{int(time.time())}"
    for i, number in enumerate(senders(replies)):
        body = "Salut, c'est Marc du bar"
        receive(service, InboundSms("twilio", f"{tag}{i:06d}", number, LINE, body, {}))
    worker = Worker(service, build_senders(settings), deliver_alerts=False)
    r, m = models.replies, models.messages
    ours = r.c.message_id.in_(select(m.c.id).where(m.c.provider_id.like(f"{tag}%")))

    def count_sent() -> int:
        with engine.connect() as conn:
            query = select(func.count()).where(ours, r.c.status == "sent")
            return int(conn.execute(query).scalar_one())

    started = datetime.now(UTC)
    try:
        run_worker(worker, live, count_sent, replies)
    finally:
        worker.close()
    with engine.connect() as conn:
        rows = conn.execute(select(r.c.status, func.count()).where(ours).group_by(r.c.status))
        statuses = {str(status): int(n) for status, n in rows}
        sent_at = conn.execute(select(r.c.sent_at).where(ours, r.c.sent_at.is_not(None)))
        waits = sorted((at - started).total_seconds() for (at,) in sent_at)
    service.dispose()
    return Result(len(waits), max(waits, default=0.0), statuses, waits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.25, help="seconds per API answer")
    parser.add_argument("--parallel", default="1,4,8", help="parallel_sends values to try")
    parser.add_argument("--postgres", metavar="URL", help="postgresql+psycopg://... instead")
    parser.add_argument("--slow-every", type=int, default=0, help="every Nth POST is slow")
    parser.add_argument("--slow-latency", type=float, default=5.0, help="seconds for those (5)")
    parser.add_argument("--live", action="store_true", help="the live loop, not rounds")
    args = parser.parse_args(argv)
    values = [int(v) for v in args.parallel.split(",") if v.strip()]
    port = free_port()
    fake = start_fake(port, args.latency, args.slow_every, args.slow_latency)
    slow = f", every {args.slow_every}th in {args.slow_latency:.1f} s" if args.slow_every else ""
    print(f"one worker ({'live loop' if args.live else 'rounds'}), {args.replies} replies, "
          f"fake Twilio answering in {args.latency:.3f} s{slow}, "
          f"{'PostgreSQL' if args.postgres else 'SQLite file'}; "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    print(f"{'parallel_sends':>14} {'replies/s':>10} {'median wait':>12} {'p95 wait':>9} "
          f"{'last reply after':>17}  sent exactly once")  # fmt: skip
    ok = True
    try:
        for parallel in values:
            with tempfile.TemporaryDirectory(prefix="antirelou-sends-") as tmp:
                url = args.postgres or f"sqlite:///{Path(tmp) / 'antirelou.db'}"
                result = run_one(url, port, parallel, args.replies, Path(tmp), args.live)
            once = result.statuses == {"sent": args.replies} and result.sent == args.replies
            ok &= once
            rate = result.sent / result.elapsed if result.elapsed else 0.0  # what was sent
            median = statistics.median(result.waits) if result.waits else 0.0
            p95 = result.waits[int(0.95 * (len(result.waits) - 1))] if result.waits else 0.0
            print(f"{parallel:>14} {rate:>10.1f} {median:>10.2f} s {p95:>7.2f} s "
                  f"{result.elapsed:>15.1f} s  "
                  f"{'yes' if once else 'NO ' + str(result.statuses)}")  # fmt: skip
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
