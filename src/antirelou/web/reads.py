"""A read-only engine for the dashboard, so reading never gets in the way of receiving.

On SQLite the service's engine opens every transaction with BEGIN IMMEDIATE (the write
lock, so writers queue instead of failing). A dashboard query run that way would hold the
write lock for its whole duration and delay webhooks. Here reads use a deferred BEGIN on
`query_only` connections: in WAL mode they see a consistent snapshot and never block a
writer. On PostgreSQL, MVCC readers never block writers: the service's engine is used.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool

from antirelou.db import SQLITE_BUSY_TIMEOUT_MS
from antirelou.service import Service

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def reader(service: Service) -> Engine:
    """The engine dashboard reads go through."""
    engine = service.engine
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return engine
    url = engine.url.render_as_string(hide_password=False)
    with _lock:
        found = _engines.get(url)
        if found is None:
            # NullPool: SQLite connections are cheap, and none is left open on a file a
            # test deletes or an operator moves.
            found = create_engine(url, poolclass=NullPool)
            event.listen(found, "connect", _read_only)
            event.listen(found, "begin", _deferred_begin)
            _engines[url] = found
    return found


def _read_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def _deferred_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")
