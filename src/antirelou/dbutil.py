"""Upserts written once for both databases (SQLite and PostgreSQL share ON CONFLICT)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(conn_or_dialect: Connection | str, table: Table) -> Any:
    """An INSERT that knows ON CONFLICT for the connection's (or named) database."""
    name = conn_or_dialect if isinstance(conn_or_dialect, str) else conn_or_dialect.dialect.name
    dialect = postgresql if name == "postgresql" else sqlite
    return dialect.insert(table)


def insert_or_ignore(conn: Connection, table: Table, keys: list[str], **values: Any) -> Any:
    """INSERT ... ON CONFLICT (keys) DO NOTHING."""
    statement = dialect_insert(conn, table).values(**values)
    return statement.on_conflict_do_nothing(index_elements=keys)
