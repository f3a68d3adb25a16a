"""Group commit for sent replies: the worker's sending threads record them together.

A reply the provider accepted must be written down (sent, what it cost, its evidence) in
a write transaction. One transaction per reply meant, on SQLite, one turn at the single
writer per reply (db.write_turn), and the web's intake holds that turn for most of a
flood (some 25 ms per batch of texts at 500 texts/s): the eight sending threads spent 62%
of their time waiting for it, and the worker sent 45 replies a second (py-spy, timings).
Now one thread at a time records, in one transaction, every reply sent while it waited
for the turn, each in its own savepoint (a reply alone needs none: its transaction is
rolled back instead); the other threads go on sending meanwhile.

A reply whose record fails stays "sending" under its lease, as after a crash between the
provider's answer and the commit: the next claim looks it up at the provider before
sending anything (outbox.claim_due, Sender.find_sent), so it never goes out twice.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine

from antirelou import outbox
from antirelou.db import write_turn
from antirelou.dbutil import Savepoint
from antirelou.delivery import adopt_early_statuses
from antirelou.outbox import ClaimedReply
from antirelou.phone import mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sent:
    """A reply the provider accepted, waiting to be recorded."""

    reply: ClaimedReply
    provider_message_id: str
    price: int | None  # micros, when the provider said, in our currency
    at: datetime


class SentRecorder:
    """Records sent replies, those of several threads in one transaction when they wait."""

    def __init__(self, engine: Engine, owner: str, currency: str) -> None:
        self._engine = engine
        self._owner = owner
        self._currency = currency
        self._turn = write_turn(engine)
        self._waiting: list[Sent] = []
        self._lock = threading.Lock()  # guards _waiting
        self._recording = threading.Lock()  # held by the one thread recording

    def record(self, sent: Sent) -> None:
        """Have `sent` recorded. The calling thread records it (with whatever else is
        waiting) unless another thread is recording: that one takes it, and the caller goes
        on to its next provider call at once. flush() waits for all of it."""
        with self._lock:
            self._waiting.append(sent)
        while self._recording.acquire(blocking=False):
            try:
                self._write_waiting()
            finally:
                self._recording.release()
            with self._lock:  # something added after our last look, while we held the lock?
                if not self._waiting:
                    return

    def flush(self) -> None:
        """Return once everything given to record() so far is committed (or logged as
        failed): the end of the worker's round."""
        with self._recording:
            self._write_waiting()

    def _write_waiting(self) -> None:
        with self._lock:
            if not self._waiting:
                return
        with self._turn:
            with self._lock:  # what was sent while we waited for the turn comes too
                batch, self._waiting = self._waiting, []
            self._write(batch)

    def _write(self, batch: list[Sent]) -> None:
        if len(batch) == 1:
            # Alone (the usual round, one reply): its transaction does what a savepoint
            # would, rolled back if recording fails; two statements less a reply.
            recorded = [self._record(batch[0], self._engine.begin)]
        else:
            with self._engine.begin() as conn:
                recorded = [
                    self._record(sent, functools.partial(_savepoint, conn)) for sent in batch
                ]
        for sent, done in zip(batch, recorded, strict=True):
            if done:
                log.debug("reply %s sent to %s", sent.reply.id, mask(sent.reply.recipient))

    def _record(self, sent: Sent, scope: Callable[[], AbstractContextManager[Connection]]) -> bool:
        """Record `sent` in `scope`, which undoes its writes if it fails."""
        reply = sent.reply
        try:
            with scope() as conn:
                recorded = outbox.mark_sent(
                    conn,
                    reply,
                    owner=self._owner,
                    provider_message_id=sent.provider_message_id,
                    price=sent.price,
                    now=sent.at,
                )
                adopt_early_statuses(conn, sent.provider_message_id, self._currency, sent.at)
        except Exception:
            log.exception(
                "reply %s was sent but not recorded: it will be looked up at the provider "
                "before any new attempt",
                reply.id,
            )
            return False
        if not recorded:
            log.warning("reply %s sent but its lease was lost before recording", reply.id)
        return recorded


@contextlib.contextmanager
def _savepoint(conn: Connection) -> Iterator[Connection]:
    """One reply of a batch: its failure undoes its own writes, not the others'."""
    with Savepoint(conn):
        yield conn
