"""Faults with real processes and real HTTP: every accepted text kept, every reply sent once.

Each test runs `antirelou serve --no-worker` and `antirelou worker` processes (tests/procs.py)
against a fake Twilio API over HTTP, sends signed webhooks, breaks something, lets the
service recover, then checks the books (`procs.check_books`):

  * every webhook answered 2xx is stored, and stored whole: its ledger line and its
    evidence record are there (one transaction);
  * every reply the database decided on was created at the provider exactly once (the fake
    counts what it CREATED, answers lost on the way back included), none is left queued;
  * the money spent is the sum of the replies' costs, nothing stays reserved, and the daily
    cap is never passed;
  * `antirelou evidence verify` exits 0.

The faults: the provider failing in every way an HTTP API can fail, then recovering; a web
process and a worker killed with SIGKILL under load; PostgreSQL restarted under load (own
throwaway cluster, only when TEST_POSTGRES_URL is set); the disk filling up under SQLite.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import json
import os
import shutil
import socket
import sqlite3
import struct
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import closing
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from antirelou import migrate, models
from antirelou.cli import when_reachable
from antirelou.db import make_engine
from antirelou.service import Service
from tests.conftest import POSTGRES_URL, REQUIRE_POSTGRES
from tests.helpers import LINE, make_settings
from tests.procs import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    REPLY_COST_MICROS,
    Deliveries,
    Fleet,
    Webhook,
    check_books,
    deliver,
    deliver_async,
    free_port,
    french_mobiles,
    message_sid,
    read_books,
    wait_for,
    webhook,
    write_config,
)

pytestmark = pytest.mark.slow

BODIES = (
    "Salut, c'est Karim du bar, tu te souviens de moi ?",
    "T'es où ? Je t'attends devant.",
    "On se voit ce soir ?",
    "Allô ? Réponds stp",
    "Coucou 😘",
)


# --- a Twilio API that fails on demand ----------------------------------------------------

SEND_FAULTS = frozenset(
    {
        "500",  # Twilio's own 500: it may or may not have created the message
        "500_after_create",
        "503_html",  # a proxy's error page, not JSON
        "429",  # throttled, with Retry-After
        "reset",  # the connection reset before Twilio did anything
        "reset_after_create",  # created, then the connection reset: the answer is lost
        "timeout",  # created, answered after the client gave up
        "timeout_not_created",
        "slow",  # answered well within the client's timeout
        "slow_after_create",  # created at once, answered late (a kill lands in between)
    }
)
LOOKUP_FAULTS = frozenset({"500", "reset", "timeout", "slow"})


class ChaosTwilio:
    """Twilio's Messages API (create, list) on 127.0.0.1, a thread per connection.

    Every POST takes the next behaviour of the send cycle set by `fail()`, every GET the next
    of the lookup cycle; after `recover()` all answer at once. A socket server rather than
    an ASGI app, so that a fault can be a real TCP reset (SO_LINGER 0) or a real stall.
    """

    def __init__(self, *, hang_seconds: float = 2.5, slow_seconds: float = 0.3) -> None:
        self.hang_seconds = hang_seconds
        self.slow_seconds = slow_seconds
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._created: list[dict[str, str]] = []
        self._send_cycle: tuple[str, ...] = ()
        self._lookup_cycle: tuple[str, ...] = ()
        self._sends = 0
        self._lookups = 0
        self.seen: Counter[str] = Counter()  # behaviours applied, "lookup:" for GETs
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ChaosTwilio:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def fail(self, sends: Sequence[str], lookups: Sequence[str] = ()) -> None:
        assert set(sends) <= SEND_FAULTS | {"ok"}, sends
        assert set(lookups) <= LOOKUP_FAULTS | {"ok"}, lookups
        with self.lock:
            self._send_cycle, self._lookup_cycle = tuple(sends), tuple(lookups)

    def recover(self) -> None:
        self.fail(())

    @property
    def sent_to(self) -> list[str]:
        """The To number of every message created, in order."""
        with self.lock:
            return [message["to"] for message in self._created]

    @property
    def faulted_sends(self) -> int:
        with self.lock:
            return sum(n for name, n in self.seen.items() if name in SEND_FAULTS)

    def next_behaviour(self, lookup: bool) -> str:
        with self.lock:
            cycle = self._lookup_cycle if lookup else self._send_cycle
            if not cycle:
                return "ok"
            if lookup:
                self._lookups += 1
                behaviour = cycle[self._lookups % len(cycle)]
            else:
                self._sends += 1
                behaviour = cycle[self._sends % len(cycle)]
            self.seen[f"lookup:{behaviour}" if lookup else behaviour] += 1
            return behaviour

    def create(self, form: dict[str, str]) -> dict[str, object]:
        now = format_datetime(datetime.now(UTC).replace(microsecond=0))
        message = {
            "sid": "SM" + uuid.uuid4().hex,
            "account_sid": ACCOUNT_SID,
            "to": form["To"],
            "from": form["From"],
            "body": form["Body"],
            "status": "queued",
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "num_segments": "1",
            "price": None,
            "price_unit": "EUR",
        }
        with self.lock:
            self._created.append(message)  # type: ignore[arg-type]
        return message

    def listed(self, to: str, sender: str) -> list[dict[str, str]]:
        with self.lock:
            found = [m for m in self._created if m["to"] == to and m["from"] == sender]
        return list(reversed(found))  # newest first, like Twilio


def _handler_for(fake: ChaosTwilio) -> type[BaseHTTPRequestHandler]:
    messages_path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    credentials = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the real API

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if not self._allowed():
                return
            behaviour = fake.next_behaviour(lookup=False)
            if behaviour in ("reset", "timeout_not_created"):
                if behaviour == "timeout_not_created":
                    fake.stopping.wait(fake.hang_seconds)
                return self._reset()
            if behaviour == "slow":
                fake.stopping.wait(fake.slow_seconds)
            not_created = ("500", "503_html", "429")
            message = None if behaviour in not_created else fake.create(form)
            if behaviour == "reset_after_create":
                return self._reset()
            if behaviour in ("timeout", "slow_after_create"):
                fake.stopping.wait(
                    fake.hang_seconds if behaviour == "timeout" else fake.slow_seconds
                )
            if behaviour in ("500", "500_after_create"):
                return self._json(500, {"code": 20500, "message": "Internal Server Error"})
            if behaviour == "503_html":
                return self._answer(503, b"<html>Service Unavailable</html>", "text/html")
            if behaviour == "429":
                body = {"code": 20429, "message": "Too Many Requests"}
                return self._json(429, body, {"Retry-After": "1"})
            self._json(201, message)

        def do_GET(self) -> None:
            if not self._allowed():
                return
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            behaviour = fake.next_behaviour(lookup=True)
            if behaviour == "reset":
                return self._reset()
            if behaviour in ("timeout", "slow"):
                hang = behaviour == "timeout"
                fake.stopping.wait(fake.hang_seconds if hang else fake.slow_seconds)
            if behaviour == "500":
                return self._json(500, {"code": 20500, "message": "Internal Server Error"})
            found = fake.listed(query.get("To", ""), query.get("From", ""))
            self._json(200, {"messages": found, "page": 0, "next_page_uri": None})

        def _allowed(self) -> bool:
            if urlsplit(self.path).path != messages_path:
                self._json(404, {"code": 20404, "message": "Not found"})
                return False
            if self.headers.get("Authorization") != credentials:
                self._json(401, {"code": 20003, "message": "Authenticate"})
                return False
            return True

        def _json(
            self, status: int, payload: object, headers: dict[str, str] | None = None
        ) -> None:
            self._answer(status, json.dumps(payload).encode(), "application/json", headers)

        def _answer(
            self,
            status: int,
            body: bytes,
            content_type: str,
            headers: dict[str, str] | None = None,
        ) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
            except OSError:  # the client gave up (timeout) or died (SIGKILL)
                self.close_connection = True

        def _reset(self) -> None:
            """Close with a TCP RST: the client sees "connection reset by peer"."""
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

    return Handler


# --- shared steps -------------------------------------------------------------------------


def traffic(
    senders: int, *, twice: int = 0, duplicates: int = 0, prefix: str = "a", start: int = 0
) -> list[Webhook]:
    """`senders` distinct senders texting once, `twice` of them texting again, and
    `duplicates` re-deliveries of a sid already sent (same MessageSid, as Twilio retries)."""
    numbers = french_mobiles(senders, start=start)
    hooks = []
    for index, number in enumerate(numbers + numbers[:twice]):
        sid = message_sid(index, prefix)
        hooks.append(webhook(sid, number, BODIES[index % len(BODIES)]))
    for index in range(duplicates):
        position = (index * 7 + 3) % len(hooks)
        hooks.insert(min(len(hooks), position + 5), hooks[position])
    return hooks


def wait_drained(database_url: str, timeout: float = 120) -> None:
    def drained() -> bool:
        books = read_books(database_url)
        return not books.parked and not books.open_replies()

    wait_for(drained, timeout, "the inbox and the outbox to drain", step=0.3)


def redeliver(base_url: str, hooks: Sequence[Webhook], deliveries: Deliveries) -> None:
    """What the provider does with a webhook we did not acknowledge: it tries again."""
    refused = deliveries.refused
    again = list({hook.sid: hook for hook in hooks if hook.sid in refused}.values())
    retry = deliver([base_url], again, concurrency=4)
    assert retry.refused == set(), f"refused again after recovery: {retry.tally()}"


def no_tracebacks(fleet: Fleet, *, workers_may_log: bool = False) -> None:
    for proc in fleet.procs:
        if workers_may_log and proc.name.startswith("worker"):
            continue
        assert "Traceback" not in proc.log.read_text(errors="replace"), proc.tail(80)


# --- (a) the provider fails, then recovers --------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_provider_failing_then_recovering_sends_every_reply_once_within_the_cap(
    tmp_path: Path, database_url: str
) -> None:
    senders, cap_replies = 150, 120
    # A daily cap that binds: 120 replies fit, the 121st does not (half a reply of slack).
    daily_cap = (cap_replies + 0.5) * REPLY_COST_MICROS / 1_000_000
    hooks = traffic(senders, twice=40, duplicates=20)
    with ChaosTwilio(hang_seconds=2.0, slow_seconds=0.3) as fake:
        sends = sorted(SEND_FAULTS)
        fake.fail(sends, lookups=["500", "ok", "reset", "timeout", "ok", "slow"])
        config = write_config(
            tmp_path / "antirelou.toml",
            database_url=database_url,
            twilio_url=fake.base_url,
            daily_cap=daily_cap,
            twilio_timeout=1.0,
            # batch 1: see test_slow_provider_and_a_batch_longer_than_the_lease_send_once
            worker={"lease": "5s", "max_attempts": 1000, "batch": 1},
        )
        with Fleet(tmp_path, config) as fleet:
            web = fleet.web()
            fleet.worker()
            fleet.worker()
            deliveries = deliver([web.base_url], hooks, concurrency=8)
            assert deliveries.refused == set(), deliveries.tally()
            # The outage lasts until every kind of fault was served a few times over.
            wait_for(
                lambda: all(fake.seen[name] >= 3 for name in sends),
                120,
                "every fault to be served",
            )
            fake.recover()
            wait_drained(database_url)
            fleet.evidence_verifies()
            no_tracebacks(fleet)
        books = read_books(database_url)
        sent_to = fake.sent_to

    assert books.sids == {hook.sid for hook in hooks}
    check_books(books, sent_to, daily_cap_micros=round(daily_cap * 1_000_000))
    assert len(sent_to) == cap_replies, "the cap binds: exactly as many replies as it allows"
    answered = set(sent_to)
    for sender, reasons in books.first_reasons.items():
        assert sender in answered or "daily_cap_reached" in reasons, (sender, reasons)
    assert any(r["maybe_sent"] for r in books.replies), "no ambiguous failure was exercised"


# --- (b) a web process and a worker killed with SIGKILL under load -------------------------


async def _load_with_kills(
    fleet: Fleet, webs: list[Any], worker: Any, hooks: Sequence[Webhook], fake: ChaosTwilio
) -> Deliveries:
    deliveries = Deliveries()
    urls = [web.base_url for web in webs]
    load = asyncio.create_task(deliver_async(urls, hooks, deliveries, concurrency=8))

    async def when_delivered(share: float) -> None:
        while len(deliveries.outcomes) < share * len(hooks) and not load.done():
            await asyncio.sleep(0.01)

    async def when_sending() -> None:
        """Until a reply is in flight at the provider (stalled there by "slow...")."""
        before = len(fake.sent_to) + fake.faulted_sends
        while len(fake.sent_to) + fake.faulted_sends == before and not load.done():
            await asyncio.sleep(0.005)

    await when_delivered(0.25)
    fleet.kill(webs[0])
    await asyncio.sleep(0.5)
    webs[0] = await asyncio.to_thread(fleet.restart, webs[0])
    for share in (0.5, 0.75):
        await when_delivered(share)
        await when_sending()
        fleet.kill(worker)
        worker = await asyncio.to_thread(fleet.restart, worker)
    await load
    return deliveries


@pytest.mark.parametrize("intake", ["inline", "queued"])
def test_web_and_worker_killed_under_load_lose_nothing_and_send_once(
    tmp_path: Path, database_url: str, intake: str
) -> None:
    hooks = traffic(200, twice=60, duplicates=40, prefix="b")
    with ChaosTwilio(slow_seconds=0.05) as fake:
        # Every send stalls; half were already created when it stalls: a kill mid-send
        # leaves either a message whose answer was lost or none at all.
        fake.fail(["slow", "slow_after_create"])
        config = write_config(
            tmp_path / "antirelou.toml",
            database_url=database_url,
            twilio_url=fake.base_url,
            twilio_timeout=1.0,  # a send ends well within its lease
            worker={"lease": "2s", "batch": 1},
            web={"intake": intake},
        )
        with Fleet(tmp_path, config) as fleet:
            webs = [fleet.web(), fleet.web()]
            worker = fleet.worker()
            deliveries = asyncio.run(_load_with_kills(fleet, webs, worker, hooks, fake))
            transport_errors = {o for o in deliveries.tally() if isinstance(o, str)}
            assert transport_errors, "the web process was killed with requests in flight"
            kept = read_books(database_url).kept()
            assert deliveries.accepted <= kept, "a webhook answered 2xx was lost"
            redeliver(webs[1].base_url, hooks, deliveries)
            wait_drained(database_url)
            fleet.evidence_verifies()
        books = read_books(database_url)
        sent_to = fake.sent_to

    assert books.sids == {hook.sid for hook in hooks}
    check_books(books, sent_to, daily_cap_micros=10**12)
    assert set(sent_to) == {hook.sender for hook in hooks}, "one reply per sender"


# --- a batch that outlives its lease, with two workers -------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_slow_provider_and_a_batch_longer_than_the_lease_send_once(
    tmp_path: Path, database_url: str
) -> None:
    """Twenty replies claimed at once, each answered in 0.3 s: the last ones are still
    waiting in the first worker's batch when their 2 s lease runs out and the second
    worker claims them. Neither may text anybody twice."""
    hooks = traffic(60, prefix="c")
    with ChaosTwilio(slow_seconds=0.3) as fake:
        fake.fail(["slow"])
        config = write_config(
            tmp_path / "antirelou.toml",
            database_url=database_url,
            twilio_url=fake.base_url,
            twilio_timeout=1.0,  # a send ends well within its lease
            worker={"lease": "2s", "batch": 20, "parallel_sends": 1},  # one at a time
        )
        with Fleet(tmp_path, config) as fleet:
            web = fleet.web()
            deliveries = deliver([web.base_url], hooks, concurrency=8)
            assert deliveries.refused == set()
            fleet.worker()
            fleet.worker()
            wait_drained(database_url)
        books = read_books(database_url)
        sent_to = fake.sent_to
    check_books(books, sent_to, daily_cap_micros=10**12)


# --- (c) PostgreSQL restarting under load ---------------------------------------------------


class Cluster:
    """A throwaway PostgreSQL cluster of our own (restarting the shared one would break
    the other tests running on it), started with scripts/start-postgres.sh."""

    def __init__(self, data: Path, port: int, url: str) -> None:
        self.data, self.port, self.url = data, port, url
        self.pg_ctl = str(Path(_postgres_bin()) / "pg_ctl")

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", self.pg_ctl, "-D", str(self.data), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the server inherits it: a pipe would never close
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=True,
        )

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every connection is cut, then it comes back."""
        self._pg_ctl("restart", "-m", "fast", "-w", "-l", str(self.data / "server.log"))

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._pg_ctl("stop", "-m", "immediate", "-w")

    def start(self) -> None:
        """Start it again after stop(), on the same port (scripts/start-postgres.sh)."""
        script = Path(__file__).resolve().parents[1] / "scripts" / "start-postgres.sh"
        subprocess.run(
            [str(script), str(self.data), str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=True,
        )


def _postgres_bin() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return str(found[-1].parent) if found else ""


@pytest.fixture
def own_postgres() -> Iterator[Cluster]:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured (set TEST_POSTGRES_URL)")
    usable = _postgres_bin() and os.geteuid() == 0 and shutil.which("runuser")
    if not usable:
        if REQUIRE_POSTGRES:
            pytest.fail("restarting a PostgreSQL cluster needs root and Debian's postgresql")
        pytest.skip("restarting a PostgreSQL cluster needs root and Debian's postgresql")
    # Under /tmp, not tmp_path: the postgres user must be able to reach the directory.
    data = Path("/tmp") / f"antirelou-fault-pg-{uuid.uuid4().hex[:8]}"
    port = free_port()
    script = Path(__file__).resolve().parents[1] / "scripts" / "start-postgres.sh"
    started = subprocess.run(
        [str(script), str(data), str(port)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    cluster = Cluster(data, port, "")
    try:
        assert started.returncode == 0, started.stderr
        admin = started.stdout.strip()
        database = f"antirelou_fault_{uuid.uuid4().hex[:8]}"
        _create_database(admin, database)
        cluster.url = make_url(admin).set(database=database).render_as_string(False)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(data, ignore_errors=True)


def _create_database(admin_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


async def _load_with_restart(
    urls: list[str], hooks: Sequence[Webhook], cluster: Cluster
) -> Deliveries:
    deliveries = Deliveries()
    load = asyncio.create_task(deliver_async(urls, hooks, deliveries, concurrency=8))
    while len(deliveries.outcomes) < 0.3 * len(hooks) and not load.done():
        await asyncio.sleep(0.01)
    await asyncio.to_thread(cluster.restart)
    await load
    return deliveries


def test_postgres_restart_under_load_loses_nothing_and_sends_once(
    tmp_path: Path, own_postgres: Cluster
) -> None:
    hooks = traffic(250, twice=60, duplicates=30, prefix="d")
    with ChaosTwilio(slow_seconds=0.02) as fake:
        fake.fail(["slow"])
        config = write_config(
            tmp_path / "antirelou.toml",
            database_url=own_postgres.url,
            twilio_url=fake.base_url,
            twilio_timeout=1.5,  # a send ends well within its lease
            worker={"lease": "3s", "batch": 1},
        )
        with Fleet(tmp_path, config) as fleet:
            upgrade = fleet.cli("db", "upgrade")
            assert upgrade.returncode == 0, upgrade.stderr
            webs = [fleet.web(), fleet.web()]
            fleet.worker()
            deliveries = asyncio.run(
                _load_with_restart([w.base_url for w in webs], hooks, own_postgres)
            )
            statuses = deliveries.tally()
            assert deliveries.refused, "the restart cut no request: it proved nothing"
            assert all(isinstance(o, int) and (o == 200 or o >= 500) for o in statuses), (
                f"only 200 or a 5xx the provider retries: {statuses}"
            )
            stored = read_books(own_postgres.url).sids
            assert deliveries.accepted <= stored, "a webhook answered 2xx was lost"
            assert all(proc.alive() for proc in fleet.procs), fleet.logs()
            redeliver(webs[0].base_url, hooks, deliveries)
            wait_drained(own_postgres.url)
            fleet.evidence_verifies()
        books = read_books(own_postgres.url)
        sent_to = fake.sent_to

    assert books.sids == {hook.sid for hook in hooks}
    check_books(books, sent_to, daily_cap_micros=10**12)
    assert set(sent_to) == {hook.sender for hook in hooks}


# --- (d) a full disk under SQLite -----------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of our own, so that filling it up harms nothing else."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def fill(directory: Path) -> Path:
    """Write zeros until the disk is full; the file to delete to give the space back."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb", buffering=0) as out:
        for size in (len(chunk), 4096, 512, 1):  # then the last crumbs: really full
            try:
                while True:
                    out.write(chunk[:size])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler


def test_full_disk_refuses_with_5xx_writes_nothing_half_and_recovers(
    tmp_path: Path, small_disk: Path
) -> None:
    database_url = f"sqlite:///{small_disk / 'antirelou.db'}"
    before = traffic(30, prefix="e0")
    during = [
        webhook(message_sid(i, "e1"), number, f"{BODIES[i % 5]} " + "blabla " * 80)
        for i, number in enumerate(french_mobiles(200, start=1000))
    ]
    after = traffic(30, prefix="e2", start=2000)
    with ChaosTwilio() as fake:
        config = write_config(
            tmp_path / "antirelou.toml",
            database_url=database_url,
            twilio_url=fake.base_url,
            twilio_timeout=1.5,
            worker={"lease": "3s"},
        )
        with Fleet(tmp_path, config) as fleet:
            web = fleet.web()
            fleet.worker()
            assert deliver([web.base_url], before, concurrency=4).refused == set()
            wait_drained(database_url)

            filler = fill(small_disk)
            full = deliver([web.base_url], during, concurrency=1)
            statuses = full.tally()
            assert any(isinstance(o, int) and o >= 500 for o in statuses), statuses
            assert all(isinstance(o, int) and (o == 200 or o >= 500) for o in statuses), statuses
            assert web.alive(), web.tail()
            stored = read_books(database_url).sids
            during_sids = {hook.sid for hook in during}
            assert stored & during_sids == full.accepted, "a refused text was written"

            filler.unlink()
            redeliver(web.base_url, during, full)
            assert deliver([web.base_url], after, concurrency=4).refused == set()
            wait_drained(database_url)
            fleet.evidence_verifies()
        books = read_books(database_url)
        sent_to = fake.sent_to

    with closing(sqlite3.connect(small_disk / "antirelou.db")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    everything = before + during + after
    assert books.sids == {hook.sid for hook in everything}
    check_books(books, sent_to, daily_cap_micros=10**12)
    assert set(sent_to) == {hook.sender for hook in everything}


def test_a_database_that_goes_away_while_the_service_starts_is_waited_for(
    own_postgres: Cluster,
) -> None:
    """The wait for the database passed, then PostgreSQL stopped while `serve` or `worker`
    did its start-up writes (seen in CI: the worker died with a traceback). They are run
    again once it is back, within `database_wait`."""
    engine = make_engine(own_postgres.url)
    migrate.upgrade(engine)
    engine.dispose()
    service = Service.from_settings(make_settings(own_postgres.url))
    runs: list[int] = []
    back = threading.Timer(1.0, own_postgres.start)

    def start_up() -> None:
        runs.append(1)
        if len(runs) == 1:  # it answered the wait, and now goes away for a second
            own_postgres.stop()
            back.start()
        service.sync_lines()

    try:
        when_reachable(service.engine, 60.0, start_up)
        with service.engine.connect() as conn:
            synced = conn.execute(select(models.lines.c.number)).scalars().all()
    finally:
        if back.is_alive():  # the test failed early: the fixture must stop what it starts
            back.join()
        service.dispose()
    assert len(runs) == 2
    assert synced == [LINE]
