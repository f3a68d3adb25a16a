"""`antirelou replay`: a recorded or simulated stream of texts through the live code.

The same receive(), policy, detectors and worker as the live service, on a virtual clock
(no sleeping) and the sandbox provider charging `pricing`, into a new SQLite database at
OUT/replay.db. After the last text the clock runs on for `drain` so held replies can go.

The replay works in an in-memory SQLite database and writes it to OUT/replay.db when it
ends (finished or not), with SQLite's online backup: the same schema and rows, without a
file write on each of the tens of thousands of commits. A replay is run again, not
recovered, so nothing is lost that a crash would need.

The worker does what the live one would, at the moments it would, but the replay skips the
rounds and ticks that would find nothing: a round runs only when a reply is due, and the
drain jumps over quiet hours (nothing held or queued, no incident open) instead of
stepping through them. Skipping only no-ops keeps the outcomes those of the stepped replay.
"""

from __future__ import annotations

import functools
import json
import math
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from rich.progress import Progress
from sqlalchemy import Connection, Engine, select
from sqlalchemy.pool import StaticPool

from antirelou import budget, migrate, models
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.dbutil import lend, take_back
from antirelou.heap import frozen_heap
from antirelou.inbound import Receipt, receive
from antirelou.money import MICROS
from antirelou.outbox import ReplyStatus
from antirelou.providers.base import InboundSms
from antirelou.providers.sandbox import SandboxSender
from antirelou.service import Service
from antirelou.settings import Settings
from antirelou.worker import Worker

WORKER_STEP = timedelta(seconds=1)  # how often, in virtual time, the worker looks for work
DRAIN_STEP = timedelta(seconds=30)
# The longest quiet jump: daily chores (evidence retention) still run within an hour of when
# stepping would have run them.
QUIET_JUMP = timedelta(hours=1)


class ScenarioError(ValueError):
    """A scenario line that cannot be replayed; names the line."""


@dataclass(frozen=True)
class ScenarioText:
    id: str
    at: datetime
    sender: str
    to: str
    body: str


def read_scenario(handle: TextIO) -> Iterator[ScenarioText]:
    for number, raw in enumerate(handle, 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
            at = datetime.fromisoformat(row["at"])
            yield ScenarioText(
                str(row["id"]), at, str(row["from"]), str(row["to"]), str(row["body"])
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ScenarioError(f"line {number}: {exc}") from None
        if at.tzinfo is None:
            raise ScenarioError(f"line {number}: 'at' needs a timezone offset")


def replay_settings(settings: Settings, database_url: str, key_path: Path) -> Settings:
    """The operator's settings with a fresh database, every line on the sandbox, and an
    evidence key of its own (a replay must never sign with the live instance's key)."""
    lines = tuple(line.model_copy(update={"provider": "sandbox"}) for line in settings.lines)
    evidence = settings.evidence.model_copy(update={"key_path": str(key_path), "tsa_url": ""})
    update = {"database_url": database_url, "lines": lines, "evidence": evidence}
    return settings.model_copy(update=update)


class Replay:
    def __init__(self, settings: Settings, out_dir: Path, start: datetime) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.database = out_dir / "replay.db"
        for stale in out_dir.glob("replay.db*"):
            stale.unlink()
        url = f"sqlite:///{self.database}"
        self.clock = VirtualClock(start)
        engine = _memory_engine()
        with engine.connect() as conn:
            _driver(conn).deserialize(_migrated_image())
        self._held = _HeldConnection(engine)
        settings = replay_settings(settings, url, out_dir / "evidence.key")
        self.service = Service(settings, engine, self.clock)
        self.service.sync_lines()
        self.worker = Worker(self.service, {"sandbox": SandboxSender()}, deliver_alerts=False)
        self._worked_at = start
        # When the worker next has a reply to send (None: none queued). Only receive(), a
        # tick (releasing held replies) and a round change it, and each refreshes it.
        self._next_due: datetime | None = None

    def feed(self, text: ScenarioText) -> Receipt:
        self.clock.set(text.at)
        self._work()
        sms = InboundSms("replay", text.id, text.sender, text.to, text.body, {"Body": text.body})
        receipt = receive(self.service, sms)
        if receipt.reply_id is not None:
            self._send_due()
        return receipt

    def drain(self, duration: timedelta) -> None:
        """Run the clock on for `duration`, the worker working every DRAIN_STEP; the steps
        where it could find nothing to do are jumped over."""
        end = self.clock.now() + duration
        while self.clock.now() < end:
            self.clock.advance(self._steps_to_work(end) * DRAIN_STEP)
            self._work(force=True)

    def _steps_to_work(self, end: datetime) -> int:
        """How many DRAIN_STEPs on to the first one where the worker may have work: the
        next one while something is held or an incident is open; else the first at or
        after the next due reply (or `end`, or a QUIET_JUMP)."""
        if not self.worker.idle():
            return 1
        now = self.clock.now()
        wake = min(end, now + QUIET_JUMP)
        if self._next_due is not None:
            wake = min(wake, self._next_due)
        return max(1, math.ceil((wake - now) / DRAIN_STEP))

    def _work(self, force: bool = False) -> None:
        """The worker's tick, then a round if a reply is due, at most every WORKER_STEP."""
        now = self.clock.now()
        if not force and now - self._worked_at < WORKER_STEP:
            return
        self._worked_at = now
        if self.worker.tick():
            self._next_due = self.worker.next_due()  # it may have released held replies
        if self._next_due is not None and self._next_due <= now:
            self._send_due()

    def _send_due(self) -> None:
        self.worker.drain()
        self._next_due = self.worker.next_due()

    def close(self) -> None:
        """Write the database to OUT/replay.db, then let everything go."""
        self.worker.close()
        self._held.close()
        _save(self.service.engine, self.database)
        self.service.dispose()


def _memory_engine() -> Engine:
    """One in-memory database, one connection: every user of the engine sees the same data.

    No rollback when the connection goes back to the pool: each of its users ends its own
    transaction (SQLAlchemy's Connection rolls back what it did not commit as it closes),
    so the pool's was always a second one, on each of a replay's hundreds of thousands."""
    return make_engine(
        "sqlite://",
        durable=False,
        poolclass=StaticPool,
        pool_reset_on_return=None,
        connect_args={"check_same_thread": False},
    )


class _HeldConnection:
    """Makes `engine.begin()` a transaction on one Connection the replay holds throughout,
    instead of a Connection taken from the pool and given back for each transaction: 3 µs
    of SQLAlchemy instead of 9, on each of the one to three transactions of a replayed text
    (5 % of a replay's instructions).

    Nothing else changes: the in-memory database has one driver connection anyway (a
    StaticPool), and the replay runs on one thread, so its transactions never overlap (two
    would already fail, on SQLite's "cannot start a transaction within a transaction").
    For the same reason the worker's reads outside a transaction (dbutil.driver_read) are
    lent that connection rather than check it out of the pool and back (1.3 % of a
    replay's instructions)."""

    def __init__(self, engine: Engine) -> None:
        self._conn = engine.connect()
        self._engine = engine
        engine.begin = self._begin  # type: ignore[method-assign, assignment]
        lend(engine, self._conn.connection.dbapi_connection)  # for the worker's reads too

    def _begin(self) -> _Transaction:
        return _Transaction(self._conn)

    def close(self) -> None:
        take_back(self._engine)
        self._conn.close()


class _Transaction:
    """`with engine.begin() as conn:` on a held Connection: committed when the block ends,
    rolled back when it raises."""

    __slots__ = ("_conn", "_transaction")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def __enter__(self) -> Connection:
        self._transaction = self._conn.begin()
        self._transaction.__enter__()  # as `with conn.begin():` does, for its checks
        return self._conn

    def __exit__(self, *exc: object) -> None:
        self._transaction.__exit__(*exc)


@functools.cache
def _migrated_image() -> bytes:
    """An empty database with the schema, as SQLite serialises it: migrated once per
    process (35 of the 50 milliseconds a replay took to start), then copied for each."""
    engine = _memory_engine()
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            return _driver(conn).serialize()
    finally:
        engine.dispose()


def _driver(conn: Connection) -> sqlite3.Connection:
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


def _save(engine: Engine, path: Path) -> None:
    with engine.connect() as conn:
        source = _driver(conn)
        target = sqlite3.connect(path)
        try:
            source.backup(target)
        finally:
            target.close()


def run_replay(
    scenario: Path, settings: Settings, out_dir: Path, drain: timedelta, progress: bool = True
) -> dict[str, Any]:
    """Replay `scenario` into `out_dir`; returns the summary that is also written there."""
    started = time.perf_counter()
    with scenario.open(encoding="utf-8") as handle:
        texts = list(read_scenario(handle))
    if not texts:
        raise ScenarioError("the scenario holds no text")
    replay = Replay(settings, out_dir, texts[0].at)
    try:
        with frozen_heap():
            with (out_dir / "inbound.jsonl").open("w", encoding="utf-8") as inbound:
                _feed_all(replay, texts, inbound, progress)
            replay.drain(drain)
        summary = _summarise(replay.service, out_dir, len(texts), time.perf_counter() - started)
    finally:
        replay.close()
    return summary


# The bar moves every PROGRESS_STEP texts: it redraws ten times a second anyway, and moving
# it on each text was 1 % of a replay.
PROGRESS_STEP = 100
_ROW_JSON = json.JSONEncoder(ensure_ascii=False).encode


def _feed_all(replay: Replay, texts: list[ScenarioText], out: TextIO, progress: bool) -> None:
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("replaying", total=len(texts))
        for done, text in enumerate(texts, 1):
            receipt = replay.feed(text)
            out.write(_ROW_JSON(_inbound_row(text, receipt)) + "\n")
            if done % PROGRESS_STEP == 0 or done == len(texts):
                bar.update(task, completed=done)


def _inbound_row(text: ScenarioText, receipt: Receipt) -> dict[str, Any]:
    return {
        "id": text.id,
        "from": text.sender,
        "decision": receipt.decision.action.value,
        "reasons": [r.value for r in receipt.decision.reasons],
        "incident": receipt.incident_id is not None,
    }


def _summarise(service: Service, out_dir: Path, count: int, elapsed: float) -> dict[str, Any]:
    outbound = _outbound(service)
    with (out_dir / "outbound.jsonl").open("w", encoding="utf-8") as handle:
        for row in outbound:
            handle.write(json.dumps(row) + "\n")
    with service.engine.connect() as conn:
        inbound_cost = budget.inbound_spent(conn) / MICROS  # billed per part, as booked
    summary = {
        "messages": count,
        "replies": len(outbound),
        "spend": round(inbound_cost + sum(r["cost"] for r in outbound), 6),
        "incidents": _incidents(service),
        "elapsed_s": round(elapsed, 3),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _outbound(service: Service) -> list[dict[str, Any]]:
    r, m = models.replies, models.messages
    sent = [ReplyStatus.SENT, ReplyStatus.DELIVERED, ReplyStatus.UNDELIVERED]
    query = (
        select(r.c.recipient, m.c.provider_id, r.c.sent_at, r.c.segments, r.c.cost_micros)
        .join(m, m.c.id == r.c.message_id)
        .where(r.c.status.in_(sent))
        .order_by(r.c.sent_at, r.c.id)
    )
    with service.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "to": row.recipient,
            "in_reply_to": row.provider_id,
            "sent_at": row.sent_at.isoformat(),
            "segments": row.segments,
            "cost": (row.cost_micros or 0) / 1_000_000,
        }
        for row in rows
    ]


def _incidents(service: Service) -> list[dict[str, str | None]]:
    i = models.incidents
    with service.engine.connect() as conn:
        rows = conn.execute(select(i.c.opened_at, i.c.closed_at).order_by(i.c.id)).all()
    return [
        {
            "start": row.opened_at.isoformat(),
            "end": row.closed_at.isoformat() if row.closed_at else None,
        }
        for row in rows
    ]
