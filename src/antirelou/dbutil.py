"""Upserts written once for both databases (SQLite and PostgreSQL share ON CONFLICT), and a
cheaper way to run the few statements every text goes through."""

from __future__ import annotations

import functools
import itertools
import operator
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

from antirelou.clock import utc_iso


def dialect_insert(conn_or_dialect: Connection | str, table: Table) -> Any:
    """An INSERT that knows ON CONFLICT for the connection's (or named) database."""
    name = conn_or_dialect if isinstance(conn_or_dialect, str) else conn_or_dialect.dialect.name
    dialect = postgresql if name == "postgresql" else sqlite
    return dialect.insert(table)


def insert_or_ignore(conn: Connection, table: Table, keys: list[str], **values: Any) -> Any:
    """INSERT ... ON CONFLICT (keys) DO NOTHING."""
    statement = dialect_insert(conn, table).values(**values)
    return statement.on_conflict_do_nothing(index_elements=keys)


def bound_values(statement: Any, prefix: str, names: Sequence[str]) -> Any:
    """`statement` (an INSERT) with each named column bound to the parameter `prefix+name`:
    what a statement nested in another's WITH needs (only the outer one binds by column,
    and SQLAlchemy keeps the columns' own names for that). Pass it prefixed() values."""
    return statement.values({name: bindparam(prefix + name) for name in names})


def prefixed(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    return {prefix + name: value for name, value in values.items()}


def written_together(dialect: str, first: Any, then: Any) -> Any | None:
    """`then`, running `first` in its WITH: two writes in one statement, so a round trip
    less to PostgreSQL on every text's path. `first` binds prefixed names (bound_values),
    so both take their values from one parameter dict. None on SQLite, which has no
    writes in WITH (and no round trips to save)."""
    if dialect != "postgresql":
        return None
    return then.add_cte(first.cte(f"first_{first.table.name}"))


# --- hot statements on the driver's cursor ------------------------------------------------
#
# conn.execute() costs 20-100 microseconds of Python per statement (parameter and result
# processing, execution context, events), several times what SQLite takes to run the
# statement; on the webhook path that was most of a text's CPU. driver_execute() runs the
# same Core statement, compiled once per database and parameter set, straight on the
# driver's cursor inside the caller's transaction (as evidence.chain does). The price: it
# converts only what our columns need (aware datetimes, stored as UtcDateTime stores them)
# and hands back the driver's raw values: numbers and text as they are, UtcDateTime
# columns to be read with db_time().


class DriverResult:
    """The rows and the row count (a plain class: one is made for every statement run, and
    a frozen dataclass takes three times as long to make)."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def scalar(self) -> Any:
        """The first column of the first row, None when there is no row."""
        return self.rows[0][0] if self.rows else None


@dataclass(frozen=True)
class _DriverSql:
    sql: str
    # The caller's parameters as the driver takes them: with the values the statement
    # carries itself (literals, OFFSET 0), in the statement's order for a positional driver,
    # datetimes as UtcDateTime binds them. Chosen once per statement (see _binder).
    bind: Callable[[Mapping[str, Any]], Sequence[Any] | Mapping[str, Any]]


def _getter(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The parameters in `names` order, fetched in C (itemgetter gives one name alone)."""
    if len(names) == 1:
        (name,) = names
        return lambda values: (values[name],)
    return operator.itemgetter(*names)


# Per prebuilt statement (module constants only: the cache keeps what it is given).
_COMPILED: dict[tuple[int, str, tuple[str, ...]], tuple[Executable, _DriverSql]] = {}


def _compiled(
    conn: Connection | Engine, statement: Executable, keys: tuple[str, ...]
) -> _DriverSql:
    cache_key = (id(statement), conn.dialect.name, keys)
    found = _COMPILED.get(cache_key)
    if found is not None and found[0] is statement:
        return found[1]
    compiled = statement.compile(dialect=conn.dialect, column_keys=list(keys))  # type: ignore[attr-defined]
    if compiled.insert_prefetch or compiled.update_prefetch:
        raise ValueError("driver_execute needs every column value given (no Python defaults)")
    binds = compiled.bind_names.items()
    defaults = {name: bind.value for bind, name in binds if not bind.required}
    ordered = _getter(tuple(compiled.positiontup)) if compiled.positional else None
    driver_sql = _DriverSql(compiled.string, _binder(conn.dialect.name, defaults, ordered))
    _COMPILED[cache_key] = (statement, driver_sql)  # keeping the statement keeps its id
    return driver_sql


def _binder(
    dialect: str,
    defaults: Mapping[str, Any],
    ordered: Callable[[Mapping[str, Any]], tuple[Any, ...]] | None,
) -> Callable[[Mapping[str, Any]], Sequence[Any] | Mapping[str, Any]]:
    """How a statement's parameters go to the driver, decided once rather than on each of
    the two dozen statements a text runs."""

    def merged(params: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**defaults, **params} if defaults else params

    if ordered is None:
        convert = sqlite_time if dialect == "sqlite" else _aware
        return lambda params: {
            k: convert(v) if isinstance(v, datetime) else v for k, v in merged(params).items()
        }
    if dialect == "sqlite":  # datetimes: the driver's adapter (below)
        return ordered if not defaults else lambda params: ordered(merged(params))
    return lambda params: [
        _aware(v) if isinstance(v, datetime) else v for v in ordered(merged(params))
    ]


def _check_aware(value: datetime) -> None:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database")


@functools.lru_cache(maxsize=64)  # one text binds the same few instants many times
def sqlite_time(value: datetime) -> str:
    """What UtcDateTime stores on SQLite: naive UTC text (microseconds always written, so
    the text compares in time order)."""
    _check_aware(value)
    return utc_iso(value, " ")


# The SQLite driver converts any datetime we bind with sqlite_time, in C, as it binds it:
# driver_execute() hands its parameters over without looking at each of them (that look,
# for every parameter of every hot statement, was 7 % of a replay). SQLAlchemy converts its
# own datetimes to text before the driver sees them, so this changes nothing for it; a
# naive datetime bound straight to sqlite3 is refused, as on the driver_execute() path.
sqlite3.register_adapter(datetime, sqlite_time)


def _aware(value: datetime) -> datetime:
    _check_aware(value)
    return value


def db_time(value: Any) -> datetime | None:
    """A UtcDateTime column as driver_execute() returns it, as UtcDateTime would read it."""
    if value is None:
        return None
    if isinstance(value, str):  # SQLite: naive UTC text
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def driver_execute(
    conn: Connection, statement: Executable, params: Mapping[str, Any]
) -> DriverResult:
    """conn.execute(statement, params), minus SQLAlchemy's per-statement work (see above)."""
    # dbapi_connection: the driver's own connection with our (not async) drivers, one
    # property less than driver_connection on every statement.
    return _run(conn, conn.connection.dbapi_connection, statement, params)


# Engines whose one driver connection a caller holds for the engine's whole life (a
# replay's in-memory database, replay._HeldConnection), lent to driver_read() so that it
# reads there between the holder's transactions instead of taking the connection out of
# the pool and putting it back (4 µs, on one to three reads a text).
_LENT: dict[Engine, Any] = {}


def lend(engine: Engine, dbapi_connection: Any) -> None:
    _LENT[engine] = dbapi_connection


def take_back(engine: Engine) -> None:
    _LENT.pop(engine, None)


def driver_read(engine: Engine, statement: Executable, params: Mapping[str, Any]) -> DriverResult:
    """A SELECT that needs no other read to agree with it (when the next reply is due,
    whether a line is paused), on a pooled connection, in no transaction of ours: what
    `with engine.connect() as conn: driver_execute(conn, ...)` did, without SQLAlchemy's
    Connection around it (some 5 µs, on reads the worker runs before every send). On SQLite
    the SELECT runs in autocommit, so it never waits for a writer's lock (engine.begin()
    would: BEGIN IMMEDIATE); on PostgreSQL, in the transaction the pool rolls back."""
    lent = _LENT.get(engine)
    if lent is not None:
        return _run(engine, lent, statement, params)
    fairy = engine.raw_connection()
    try:
        return _run(engine, fairy.dbapi_connection, statement, params)
    finally:
        fairy.close()


def _run(
    owner: Connection | Engine, dbapi: Any, statement: Executable, params: Mapping[str, Any]
) -> DriverResult:
    """`statement` on the driver connection `dbapi`, compiled for `owner`'s dialect."""
    driver_sql = _compiled(owner, statement, tuple(params))
    values = driver_sql.bind(params)
    cursor = dbapi.cursor()
    try:
        cursor.execute(driver_sql.sql, values)
        rows = cursor.fetchall() if cursor.description else []
        return DriverResult(rows, cursor.rowcount)
    except owner.dialect.loaded_dbapi.Error as error:
        raise _wrapped(owner, driver_sql, values, error) from error
    finally:
        cursor.close()


def driver_execute_many(
    conn: Connection, statement: Executable, rows: Sequence[Mapping[str, Any]]
) -> None:
    """conn.execute(statement, rows) for an INSERT or UPDATE run once per row."""
    if not rows:
        return
    driver_sql = _compiled(conn, statement, tuple(rows[0]))
    values = [driver_sql.bind(row) for row in rows]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(driver_sql.sql, values)
    except conn.dialect.loaded_dbapi.Error as error:
        raise _wrapped(conn, driver_sql, values, error) from error
    finally:
        cursor.close()


def _wrapped(
    conn: Connection | Engine, driver_sql: _DriverSql, values: Any, error: Exception
) -> Any:
    """The error SQLAlchemy would have raised (IntegrityError, OperationalError...)."""
    base = conn.dialect.loaded_dbapi.Error
    return DBAPIError.instance(driver_sql.sql, values, error, base, dialect=conn.dialect)


# --- savepoints on the driver's connection -------------------------------------------------

_savepoint_names = itertools.count(1)


class Savepoint:
    """conn.begin_nested() for the hot path: the same SAVEPOINT, then RELEASE or ROLLBACK TO,
    sent on the driver's connection inside the caller's transaction. SQLAlchemy compiles
    each of those statements anew every time: 50 microseconds a savepoint, against 1.

    Use it as a context manager (an exception rolls back to the savepoint and goes on up), or
    call commit() or rollback() once. Do not mix it with begin_nested() on one connection."""

    def __init__(self, conn: Connection) -> None:
        self._driver = conn.connection.driver_connection
        self._name = f"ar_sp_{next(_savepoint_names)}"
        self._execute(f"SAVEPOINT {self._name}")

    def commit(self) -> None:
        self._execute(f"RELEASE SAVEPOINT {self._name}")

    def rollback(self) -> None:
        self._execute(f"ROLLBACK TO SAVEPOINT {self._name}")
        self._execute(f"RELEASE SAVEPOINT {self._name}")

    def _execute(self, sql: str) -> None:
        cursor = self._driver.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql)
        finally:
            cursor.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.rollback()
