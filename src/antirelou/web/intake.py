"""Group commit for webhooks: texts that arrive together share one transaction.

Each text is still all-or-nothing (its own SAVEPOINT) and its provider still gets a 2xx only
after the commit that holds it; what is shared is the commit itself. On SQLite a commit is a
disk flush, and under a raid's flood it was most of a webhook's time: one flush for a batch
instead of one per text. One writer thread per web process also means the process's
requests no longer fight each other for SQLite's write lock (sleep-and-retry, second-long
tails). Used on SQLite only (see AppState.receive): on PostgreSQL several processes' batches,
each locking many senders' rows in arrival order, deadlocked under the concurrency test.

A quiet line is unchanged: a lone text is a batch of one, handled at once.

What a batch gets inside the shared transaction is the intake's `handle`: the whole
decision of each text in its own savepoint (`one_by_one(receive_in)`, by default), or with
`[web] intake = "queued"` one insert that parks them all in the inbox (inbox.py).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine

from antirelou.providers.base import InboundSms
from antirelou.service import Service

log = logging.getLogger(__name__)
T = TypeVar("T")
# Handles a batch in the caller's transaction: one outcome per text, in order (an exception
# for a text that failed alone; raise for the whole batch).
Handle = Callable[[Service, Connection, list[InboundSms]], list[T | BaseException]]

MAX_BATCH = 64  # texts per commit: enough to amortise a flush, short enough to keep latency


def one_by_one(handle: Callable[[Service, Connection, InboundSms], T]) -> Handle[T]:
    """A batch handle that runs `handle` on each text in its own savepoint: a failure
    undoes that text alone, not its neighbours."""

    def each(
        service: Service, conn: Connection, texts: list[InboundSms]
    ) -> list[T | BaseException]:
        outcomes: list[T | BaseException] = []
        for sms in texts:
            try:
                with conn.begin_nested():
                    outcomes.append(handle(service, conn, sms))
            except Exception as exc:
                log.exception("a text could not be received")
                outcomes.append(exc)
        return outcomes

    return each


@dataclass
class _Pending(Generic[T]):
    sms: InboundSms
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]


def _settle_all(settled: list[tuple[asyncio.Future[T], T | BaseException]]) -> None:
    for future, outcome in settled:
        _settle(future, outcome)


def _settle(future: asyncio.Future[T], outcome: T | BaseException) -> None:
    if future.cancelled():  # the client went away; the text is stored all the same
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class Intake(Generic[T]):
    """Receives texts for the web handlers on one writer thread, committing in batches."""

    def __init__(
        self,
        service: Service,
        handle: Handle[T],
        engine: Engine | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.service = service
        self.handle = handle
        self.engine = engine or service.engine  # where `handle` writes
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending[T] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def receive(self, sms: InboundSms) -> T:
        """Handle `sms`; returns once it is committed (raises if it was not)."""
        loop = asyncio.get_running_loop()
        pending: _Pending[T] = _Pending(sms, loop, loop.create_future())
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

    def _gather(self, first: _Pending[T]) -> tuple[list[_Pending[T]], bool]:
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

    def _commit(self, batch: list[_Pending[T]]) -> None:
        try:
            with self.engine.begin() as conn:
                outcomes = self.handle(self.service, conn, [pending.sms for pending in batch])
        except Exception as exc:  # the commit failed: nothing in the batch was stored
            log.warning("a batch of %d texts was not committed: %s", len(batch), exc)
            outcomes = [exc] * len(batch)
        # One wake-up of each event loop for the whole batch (each costs a syscall).
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[T], Any]]] = {}
        for pending, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(pending.loop, []).append((pending.future, outcome))
        for loop, settled in by_loop.items():
            loop.call_soon_threadsafe(_settle_all, settled)
