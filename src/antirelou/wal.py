"""Copying SQLite's write-ahead log into the database beside the writer, not in its way.

With WAL, a commit appends pages to the log; now and then the log is copied back into the
database file (a checkpoint, with an fsync). By default SQLite has the committing
connection do it, every 1,000 pages: one webhook in a few hundred then waits for the copy,
and that was the tail of the webhook latency under load. A web process on SQLite runs this
thread instead, which checkpoints every second (PASSIVE: it never blocks the writer, it
copies what it can). Commits still checkpoint themselves past WAL_BACKSTOP_PAGES (db.py),
so a process without the thread (the CLI, `antirelou worker`) never lets the log grow
without bound.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

log = logging.getLogger(__name__)

EVERY = 1.0  # seconds between checkpoints


class WalCheckpointer:
    def __init__(self, engine: Engine, every: float = EVERY) -> None:
        self.engine = engine
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, pages in the log, pages copied)."""
        raw = self.engine.raw_connection()
        try:  # the driver's connection: no transaction around the PRAGMA
            row = raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()  # type: ignore[union-attr]
        finally:
            raw.close()
        busy, pages, copied = row
        return int(busy), int(pages), int(copied)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="wal", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=10)
            self._thread = None
            self._stop = threading.Event()  # so that it can start again

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.run_once()
            except Exception as exc:  # a failed copy is retried next time; commits go on
                log.warning("WAL checkpoint failed: %s", exc)
