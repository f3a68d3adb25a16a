"""Real `antirelou` processes for the fault and concurrency tests, and signed webhooks for them.

    fleet = Fleet(tmp_path, config)
    web = fleet.web()          # `antirelou serve --no-worker` on a free port, /healthz answered
    worker = fleet.worker()    # `antirelou worker`
    fleet.kill(web)            # SIGKILL
    web = fleet.restart(web)   # same command, same port, healthy again
    fleet.stop()               # everything still running: SIGTERM, then SIGKILL

Processes get a temporary TOML configuration (`write_config`) and this process's environment
without its ANTIRELOU_* variables (they would be read as configuration). Webhooks are signed
exactly as Twilio signs them, for the configuration's `public_url`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from antirelou.providers.twilio import compute_signature

ANTIRELOU = Path(sys.executable).parent / "antirelou"
LINE = "+33939000021"
ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "fault-token"
PUBLIC_URL = "https://decoy.example.org"
WEBHOOK_PATH = "/webhooks/twilio/sms"
# One reply in the default French text: one GSM-7 segment at the default price.
REPLY_COST_MICROS = 76_270


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without ANTIRELOU_* variables, plus `extra`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("ANTIRELOU_")}
    env.update(extra)
    return env


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def _section(name: str, values: Mapping[str, object]) -> str:
    lines = [f"[{name}]"] + [f"{key} = {_toml(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


# The raid defence is tested on its own (test_raids.py); here it must not hold or refuse
# replies on its own initiative, so that who is eligible depends on the caps alone.
QUIET_DEFENCE: dict[str, object] = {
    "cluster_min_senders": 1_000_000,
    "block_min_senders": 1_000_000,
    "surge_min_new_per_minute": 1_000_000,
    "open_hostile_new_senders": 1_000_000,
    "open_hostile_texts": 1_000_000,
}


def write_config(
    path: Path,
    *,
    database_url: str,
    twilio_url: str,
    daily_cap: float = 10_000.0,
    total: float = 100_000.0,
    twilio_timeout: float = 2.0,  # at most half the lease (settings refuse more)
    worker: Mapping[str, object] | None = None,
    defence: Mapping[str, object] | None = None,
    web: Mapping[str, object] | None = None,
) -> Path:
    """A configuration with one Twilio line whose API is `twilio_url`; returns `path`."""
    worker_settings = {"poll_interval": 0.1, "lease": "5s", "backoff": "0.2s", "max_backoff": "1s"}
    worker_settings.update(worker or {})
    text = (
        f"database_url = {_toml(database_url)}\n"
        f"public_url = {_toml(PUBLIC_URL)}\n\n"
        f'[[lines]]\nnumber = {_toml(LINE)}\nprovider = "twilio"\n\n'
        + _section(
            "twilio",
            {
                "account_sid": ACCOUNT_SID,
                "auth_token": AUTH_TOKEN,
                "api_base_url": twilio_url,
                "timeout": twilio_timeout,
            },
        )
        + _section("budget", {"daily_cap": daily_cap, "total": total})
        + _section("worker", worker_settings)
        + _section("defence", {**QUIET_DEFENCE, **(defence or {})})
        + _section("evidence", {"key_path": str(path.parent / "evidence.key")})
        + (_section("web", web) if web else "")
    )
    path.write_text(text, encoding="utf-8")
    return path


# --- processes --------------------------------------------------------------------------


@dataclass
class Proc:
    """One child process: what it runs, where it logs, and its port if it serves."""

    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes]
    port: int | None = None

    @property
    def base_url(self) -> str:
        assert self.port is not None, f"{self.name} serves no port"
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class Fleet:
    """`antirelou` processes on one configuration, all stopped by `stop()`."""

    def __init__(self, workdir: Path, config: Path) -> None:
        self.workdir = workdir
        self.config = config
        self.procs: list[Proc] = []
        self._started = Counter[str]()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, argv: list[str], port: int | None = None) -> Proc:
        self._started[name] += 1
        log = self.workdir / f"{name}-{self._started[name]}.log"
        with log.open("wb") as output:
            popen = subprocess.Popen(
                argv, stdout=output, stderr=subprocess.STDOUT, env=environment()
            )
        proc = Proc(name, argv, log, popen, port)
        self.procs.append(proc)
        return proc

    def web(self, port: int | None = None, *, wait: bool = True, name: str = "") -> Proc:
        """`antirelou serve --no-worker` on `port` (a free one by default)."""
        port = port or free_port()
        argv = [str(ANTIRELOU), "serve", "--no-worker", "--config", str(self.config)]
        proc = self._spawn(name or f"web-{port}", [*argv, "--port", str(port)], port)
        if wait:
            wait_healthy(proc)
        return proc

    def worker(self, name: str = "worker") -> Proc:
        return self._spawn(name, [str(ANTIRELOU), "worker", "--config", str(self.config)])

    def kill(self, proc: Proc) -> None:
        """SIGKILL: no cleanup of any kind, like a crash or the OOM killer."""
        if proc.alive():
            proc.popen.send_signal(signal.SIGKILL)
        proc.popen.wait(timeout=15)

    def restart(self, proc: Proc, *, wait: bool = True) -> Proc:
        """The same command again (same port); the old process must be gone."""
        assert not proc.alive(), f"{proc.name} is still running"
        fresh = self._spawn(proc.name, proc.argv, proc.port)
        if wait and fresh.port is not None:
            wait_healthy(fresh)
        return fresh

    def stop(self) -> None:
        running = [proc for proc in self.procs if proc.alive()]
        for proc in running:
            proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in running:
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=15)

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `antirelou ARGS` with ANTIRELOU_CONFIG pointing at the configuration."""
        return subprocess.run(
            [str(ANTIRELOU), *args],
            capture_output=True,
            text=True,
            env=environment(ANTIRELOU_CONFIG=str(self.config)),
            timeout=timeout,
            check=False,
        )

    def evidence_verifies(self) -> None:
        result = self.cli("evidence", "verify")
        assert result.returncode == 0, f"evidence verify failed:\n{result.stdout}{result.stderr}"

    def logs(self) -> str:
        return "\n".join(f"--- {proc.log.name}\n{proc.tail()}" for proc in self.procs)


def wait_for(what: Callable[[], object], timeout: float, why: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f}s waiting for {why}")
        time.sleep(step)


def wait_healthy(proc: Proc, timeout: float = 60) -> None:
    """Until `GET /healthz` answers 200; fail with the log if the process exits first."""

    def healthy() -> bool:
        if not proc.alive():
            raise AssertionError(f"{proc.name} exited during start-up:\n{proc.tail()}")
        try:
            return httpx.get(f"{proc.base_url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, timeout, f"{proc.name} to answer /healthz", step=0.1)


# --- signed webhooks --------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    """One inbound SMS webhook, signed like Twilio signs it."""

    sid: str
    sender: str
    body: bytes
    headers: dict[str, str]


def message_sid(number: int, prefix: str = "") -> str:
    """A valid Twilio message sid (SM + 32 hex digits), unique per number and prefix."""
    digits = f"{prefix}{number:x}".rjust(32, "0")
    assert len(digits) == 32
    return "SM" + digits


def webhook(sid: str, sender: str, text: str, token: str = AUTH_TOKEN) -> Webhook:
    pairs = [
        ("ToCountry", "FR"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("Body", text),
        ("FromCountry", "FR"),
        ("To", LINE),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", sender),
        ("ApiVersion", "2010-04-01"),
    ]
    signature = compute_signature(PUBLIC_URL + WEBHOOK_PATH, pairs, token)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature,
    }
    return Webhook(sid, sender, urlencode(pairs).encode(), headers)


def french_mobiles(count: int, start: int = 0) -> list[str]:
    """`count` distinct valid French mobile numbers (answerable), spread over +336 and +337.

    Deterministic: the same `start` gives the same numbers; disjoint `start`s 10,000 apart
    give disjoint lists for counts up to 10,000."""
    from antirelou.phone import SenderKind, classify

    numbers: list[str] = []
    index = start * 3  # candidates fail now and then: unassigned ranges
    while len(numbers) < count:
        prefix = 6 + index % 2
        number = f"+33{prefix}{index * 7919 % 10**8:08d}"
        if classify(number).kind is SenderKind.ANSWERABLE:
            numbers.append(number)
        index += 1
    return numbers


@dataclass
class Deliveries:
    """What each webhook got: the HTTP statuses, or the name of the transport error."""

    outcomes: dict[str, list[int | str]] = field(default_factory=dict)

    def record(self, sid: str, outcome: int | str) -> None:
        self.outcomes.setdefault(sid, []).append(outcome)

    @property
    def accepted(self) -> set[str]:
        """Sids that got a 2xx at least once: they must be stored."""
        return {
            sid
            for sid, got in self.outcomes.items()
            if any(isinstance(o, int) and 200 <= o < 300 for o in got)
        }

    @property
    def refused(self) -> set[str]:
        return set(self.outcomes) - self.accepted

    def tally(self) -> Counter[int | str]:
        return Counter(o for got in self.outcomes.values() for o in got)


async def _deliver(
    base_urls: Sequence[str],
    hooks: Iterable[Webhook],
    concurrency: int,
    deliveries: Deliveries,
    timeout: float,
) -> None:
    pending = iter(enumerate(hooks))
    # Idle connections are dropped before the server's keep-alive (web.timeout_keep_alive, 5 s)
    # would: at equal timeouts a request can go out on a connection the server is closing,
    # and fail with a ReadError that says nothing about the service (seen once in 10,000).
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2.0
    )
    clients = [httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) for url in base_urls]
    try:

        async def lane() -> None:
            for index, hook in pending:
                client = clients[index % len(clients)]
                try:
                    response = await client.post(
                        WEBHOOK_PATH, content=hook.body, headers=hook.headers
                    )
                except httpx.HTTPError as exc:
                    deliveries.record(hook.sid, type(exc).__name__)
                else:
                    deliveries.record(hook.sid, response.status_code)

        await asyncio.gather(*(lane() for _ in range(concurrency)))
    finally:
        for client in clients:
            await client.aclose()


def deliver(
    base_urls: Sequence[str],
    hooks: Iterable[Webhook],
    *,
    concurrency: int = 16,
    deliveries: Deliveries | None = None,
    timeout: float = 30.0,
) -> Deliveries:
    """POST every webhook, `concurrency` at a time, spread over `base_urls` round-robin."""
    deliveries = deliveries if deliveries is not None else Deliveries()
    asyncio.run(_deliver(base_urls, hooks, concurrency, deliveries, timeout))
    return deliveries


async def deliver_async(
    base_urls: Sequence[str],
    hooks: Iterable[Webhook],
    deliveries: Deliveries,
    *,
    concurrency: int = 16,
    timeout: float = 30.0,
) -> None:
    """`deliver` inside a running event loop (to run faults alongside)."""
    await _deliver(base_urls, hooks, concurrency, deliveries, timeout)


# --- the books: what the database says after a run ---------------------------------------


@dataclass(frozen=True)
class Books:
    """Everything the exactly-once and money checks need, read in one go."""

    sids: set[str]  # provider ids of the stored texts
    senders_by_sid: dict[str, str]
    replies: list[dict[str, Any]]
    first_reasons: dict[str, list[str]]  # each sender's first stored text: its reasons
    counters: dict[str, tuple[int, int]]  # key -> (spent, reserved)
    ledger: dict[str, tuple[int, int]]  # kind -> (rows, sum of amounts)
    message_records: int  # evidence records about a message ("message:ID")
    parked: set[str]  # provider ids of texts accepted and waiting for a decision (inbox)

    def day_spent(self) -> int:
        return sum(spent for key, (spent, _) in self.counters.items() if key.startswith("day:"))

    def reserved(self) -> int:
        return sum(reserved for _, reserved in self.counters.values())

    def open_replies(self) -> list[dict[str, Any]]:
        return [r for r in self.replies if r["status"] in ("held", "queued", "sending")]

    def kept(self) -> set[str]:
        """Provider ids of every text the service holds: stored, or parked (queued intake)."""
        return self.sids | self.parked


def read_books(database_url: str) -> Books:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT provider_id, sender FROM messages")).all()
            replies = [
                dict(row._mapping)
                for row in conn.execute(
                    text(
                        "SELECT id, recipient, status, provider_message_id, cost_micros, "
                        "reserved_micros, attempts, maybe_sent, error FROM replies ORDER BY id"
                    )
                )
            ]
            first_reasons = {
                row.sender: json.loads(row.reasons)
                for row in conn.execute(
                    text(
                        "SELECT sender, reasons FROM messages WHERE id IN "
                        "(SELECT min(id) FROM messages GROUP BY sender)"
                    )
                )
            }
            counters = {
                row.key: (int(row.spent_micros), int(row.reserved_micros))
                for row in conn.execute(text("SELECT * FROM budget_counters"))
            }
            ledger = {
                row.kind: (int(row.n), int(row.total))
                for row in conn.execute(
                    text(
                        "SELECT kind, count(*) AS n, sum(amount_micros) AS total "
                        "FROM ledger GROUP BY kind"
                    )
                )
            }
            records = conn.execute(
                text("SELECT count(DISTINCT ref) FROM evidence_records WHERE ref LIKE 'message:%'")
            ).scalar_one()
    finally:
        engine.dispose()
    return Books(
        parked=_parked(database_url),
        sids={sid for sid, _ in stored},
        senders_by_sid=dict(stored),
        replies=replies,
        first_reasons=first_reasons,
        counters=counters,
        ledger=ledger,
        message_records=int(records),
    )


def _parked(database_url: str) -> set[str]:
    """What waits in the inbox: a table of the database, or on SQLite a file of its own."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from antirelou.inbox import side_file

    engine = create_engine(database_url, poolclass=NullPool)
    side = side_file(engine)
    if side is not None:
        engine.dispose()
        if not side.exists():
            return set()
        engine = create_engine(f"sqlite:///{side}", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT provider_id FROM inbox")).scalars())
    finally:
        engine.dispose()


def check_books(books: Books, sent_to: Sequence[str], *, daily_cap_micros: int) -> None:
    """The invariants every fault and concurrency test ends with, once the outbox is empty.

    `sent_to` is the To number of every message the fake provider CREATED (a request whose
    answer was lost, but which the provider processed, counts).
    """
    # Every text is decided, and whole: stored once, booked once, in the evidence log once.
    assert not books.parked, f"texts still waiting for a decision: {sorted(books.parked)[:5]}"
    assert books.ledger.get("inbound", (0, 0))[0] == len(books.sids)
    assert books.message_records == len(books.sids)
    # Exactly once at the provider: nobody got two texts, every reply row went out.
    twice = {number: n for number, n in Counter(sent_to).items() if n > 1}
    assert not twice, f"texted more than once: {twice}"
    assert not books.open_replies(), f"replies left in the outbox: {books.open_replies()[:5]}"
    sent = [r for r in books.replies if r["status"] == "sent"]
    assert len(sent) == len(books.replies), [r for r in books.replies if r["status"] != "sent"]
    assert sorted(r["recipient"] for r in sent) == sorted(sent_to)
    assert len({r["provider_message_id"] for r in sent}) == len(sent)
    # Money: what was spent is what the replies cost, nothing is left reserved, no cap passed.
    cost = sum(int(r["cost_micros"]) for r in sent)
    assert books.day_spent() == cost
    assert books.counters.get("total", (0, 0))[0] == cost
    assert books.ledger.get("reply", (0, 0)) == ((len(sent), cost) if sent else (0, 0))
    assert books.reserved() == 0
    assert cost <= daily_cap_micros
