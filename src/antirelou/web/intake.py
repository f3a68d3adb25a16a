"""Group commit for webhooks: texts that arrive together share one transaction.

Each text is still all-or-nothing (its own SAVEPOINT) and its provider still gets a 2xx only
after the commit that holds it; what is shared is the commit itself. On SQLite a commit is a
disk flush, and under a raid's flood it was most of a webhook's time: one flush for a batch
instead of one per text. One writer thread per web process also means the process's
requests no longer fight each other for SQLite's write lock (sleep-and-retry, second-long
tails). Used on SQLite only (see AppState.receive): on PostgreSQL several processes' batches,
each locking many senders' rows in arrival order, deadlocked under the concurrency test.

A quiet line is unchanged: a lone text is a batch of one, handled at once.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from antirelou.db import writing
from antirelou.dbutil import Savepoint
from antirelou.inbound import Receipt, receive_in
from antirelou.providers.base import InboundSms
from antirelou.service import Service

log = logging.getLogger(__name__)

MAX_BATCH = 64  # texts per commit: enough to amortise a flush, short enough to keep latency


@dataclass
class _Pending:
    sms: InboundSms
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Receipt]


def _settle_all(settled: list[tuple[asyncio.Future[Receipt], Receipt | BaseException]]) -> None:
    for future, outcome in settled:
        _settle(future, outcome)


def _settle(future: asyncio.Future[Receipt], outcome: Receipt | BaseException) -> None:
    if future.cancelled():  # the client went away; the text is stored all the same
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class Intake:
    """Receives texts for the web handlers on one writer thread, committing in batches."""

    def __init__(self, service: Service, max_batch: int = MAX_BATCH) -> None:
        self.service = service
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def receive(self, sms: InboundSms) -> Receipt:
        """Store and decide `sms`; returns once it is committed (raises if it was not)."""
        loop = asyncio.get_running_loop()
        pending = _Pending(sms, loop, loop.create_future())
        self._start()
        self._queue.put(pending)
        return await pending.future

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="intake", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._gather(first)
            self._commit(batch)
            if stop:
                return

    def _gather(self, first: _Pending) -> tuple[list[_Pending], bool]:
        """The first text and whatever else is already waiting, up to max_batch."""
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _commit(self, batch: list[_Pending]) -> None:
        outcomes: list[Receipt | BaseException] = []
        try:
            with writing(self.service.engine) as conn:
                for pending in batch:
                    outcomes.append(self._one(conn, pending.sms))
        except Exception as exc:  # the commit failed: nothing in the batch was stored
            log.warning("a batch of %d texts was not committed: %s", len(batch), exc)
            outcomes = [exc] * len(batch)
        # One wake-up of each event loop for the whole batch (each costs a syscall).
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Receipt], Any]]] = {}
        for pending, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(pending.loop, []).append((pending.future, outcome))
        for loop, settled in by_loop.items():
            loop.call_soon_threadsafe(_settle_all, settled)

    def _one(self, conn: Connection, sms: InboundSms) -> Receipt | BaseException:
        """One text in its own savepoint: a failure undoes it alone, not its neighbours."""
        try:
            with Savepoint(conn):
                return receive_in(self.service, conn, sms)
        except Exception as exc:
            log.exception("a text could not be received")
            return exc
