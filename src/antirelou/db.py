"""Database engines for SQLite (default) and PostgreSQL, and the column types they share."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, create_engine, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from antirelou.keyfiles import give_to_owner_of

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_POOL_SIZE = 20  # connections kept open to a database file (see _sqlite_engine)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases.

    SQLite keeps no timezone; we store UTC and hand back aware datetimes, so code never
    compares naive and aware values.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(url: str, *, durable: bool = True, **kwargs: Any) -> Engine:
    """An engine with the settings each backend needs to be safe under concurrency.

    `durable=False` skips SQLite's fsync: only for throwaway databases (replays).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, durable, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    if kwargs.get("poolclass") is not NullPool:  # NullPool takes no size
        kwargs.setdefault("pool_size", 10)
    return create_engine(url, **kwargs)


def _sqlite_engine(url: str, durable: bool, **kwargs: Any) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    kwargs.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    if "poolclass" not in kwargs and database and database != ":memory:":
        # SQLAlchemy keeps 5 by default; beyond, each connection is opened (pragmas and
        # all) and closed again. The worker's sending threads, the intake, the recorder and
        # the web's threads use more at once, and an idle SQLite connection costs nothing.
        kwargs.setdefault("pool_size", SQLITE_POOL_SIZE)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas if durable else _sqlite_fast_pragmas)
    # pysqlite opens transactions lazily and never for SELECT; we want BEGIN IMMEDIATE for
    # writes so two writers queue on the busy timeout instead of failing on lock upgrade.
    # As this engine's dialect's do_begin rather than a "begin" event listener: any engine
    # event makes every connection join and run the event dispatch (a transaction took 15
    # µs of Python instead of 11; a replayed raid opens three per text).
    engine.dialect.do_begin = _sqlite_begin  # type: ignore[method-assign]
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # FULL: a text we acknowledged survives a power cut too, not only a process crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _sqlite_fast_pragmas(dbapi_connection: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    dbapi_connection.execute("PRAGMA synchronous=OFF")


def _sqlite_begin(dbapi_connection: Any) -> None:
    dbapi_connection.driver_connection.execute("BEGIN IMMEDIATE")


def wait_until_reachable(
    engine: Engine, timeout: float, on_wait: Callable[[OperationalError], None]
) -> None:
    """Return once the database answers; retry every second up to `timeout` seconds, then
    raise the last error. A service started while its PostgreSQL restarts (or before it,
    at boot) waits for it instead of dying; `on_wait` is told the first failure."""
    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return
        except OperationalError as error:
            if time.monotonic() >= deadline:
                raise
            if not told:
                on_wait(error)
                told = True
            time.sleep(1.0)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def write_turn(engine: Engine) -> contextlib.AbstractContextManager[Any]:
    """The turn a writer takes before a write transaction on `engine`.

    SQLite has one writer at a time, and a connection that finds the lock taken sleeps in
    its busy handler, in steps of 1 to 100 milliseconds, whoever holds it: under load the
    writers spend more time asleep than writing. So writers take turns instead: the threads
    of one process on a Python lock, and processes (the web app and its worker, `serve
    --workers N`) on a file lock next to the database, which the kernel hands to the next
    waiter as soon as the last one commits. SQLite's own lock still makes writes safe; a
    writer that takes no turn (a one-shot command) is only slower. PostgreSQL locks rows:
    no turn. Reentrant, so a helper that takes it inside a caller's turn cannot deadlock.
    """
    if not is_sqlite(engine):
        return contextlib.nullcontext()
    with _TURNS_LOCK:
        turn = _TURNS.get(engine)
        if turn is None:
            turn = _TURNS[engine] = WriteTurn(_turn_file(engine))
        return turn


def _turn_file(engine: Engine) -> Path | None:
    """The lock file processes share for a SQLite file; None for a database in memory."""
    if is_memory(engine) or engine.url.database is None:
        return None
    return Path(engine.url.database + "-turn")


class WriteTurn:
    """A reentrant lock for this process's threads that, while held, also holds an
    exclusive lock on the file `path` (if any), so that processes take turns too."""

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.RLock()
        self._path = path
        self._fd: int | None = None
        self._depth = 0  # only the thread holding _lock reads or writes it

    def __enter__(self) -> WriteTurn:
        self._lock.acquire()
        if self._depth == 0 and self._path is not None:
            try:
                fcntl.lockf(self._file(), fcntl.LOCK_EX)  # waits without the GIL
            except BaseException:
                self._lock.release()
                raise
        self._depth += 1
        return self

    def __exit__(self, *_exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)
        self._lock.release()

    def _file(self) -> int:
        if self._fd is None:
            assert self._path is not None
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            # A CLI command run as root must not leave a lock file the service cannot open.
            database = self._path.with_name(self._path.name.removesuffix("-turn"))
            give_to_owner_of(self._fd, database if database.exists() else self._path.parent)
            weakref.finalize(self, os.close, self._fd)
        return self._fd


@contextlib.contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """engine.begin() in the write turn (see write_turn): for every write transaction
    that other threads or processes may run at the same time."""
    with write_turn(engine), engine.begin() as conn:
        yield conn


_TURNS: weakref.WeakKeyDictionary[Engine, WriteTurn] = weakref.WeakKeyDictionary()
_TURNS_LOCK = threading.Lock()


def is_memory(engine: Engine) -> bool:
    """A SQLite database in memory: one connection holds it all (each new one is empty),
    so its work cannot be spread over threads."""
    return is_sqlite(engine) and engine.url.database in (None, "", ":memory:")


def null_pool_engine(url: str) -> Engine:
    """An engine without a pool, for one-shot commands."""
    return make_engine(url, poolclass=NullPool)
