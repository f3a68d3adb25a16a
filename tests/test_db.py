"""The engine's SQLite transactions: each takes the write lock as it begins."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from antirelou.db import make_engine


def test_a_transaction_holds_the_write_lock_from_its_first_moment(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE: a transaction that reads before it writes cannot be refused the
    lock half-way (SQLite's deferred BEGIN would fail its upgrade, not wait)."""
    database = tmp_path / "t.db"
    engine = make_engine(f"sqlite:///{database}")
    other = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT 1"))
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once the transaction ended
        other.execute("ROLLBACK")
    finally:
        other.close()
        engine.dispose()


def test_a_connection_that_only_reads_holds_the_lock_too(tmp_path: Path) -> None:
    """Autobegin goes the same way: the service's reads sit in write transactions (the
    dashboard reads through its own deferred engine, web.reads)."""
    database = tmp_path / "t.db"
    engine = make_engine(f"sqlite:///{database}")
    other = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()
        engine.dispose()


def test_the_reads_before_each_send_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    """Whether the recipient opted out or the line is paused, and when the next reply is
    due, are read in no transaction (dbutil.driver_read), never in a write transaction: a
    writer holding SQLite's lock (the web app deciding a flood of texts) does not hold up
    the worker's sends. (Read through engine.begin(), they waited out the busy timeout.)"""
    from antirelou import migrate, outbox
    from antirelou.dbutil import driver_read
    from antirelou.worker import _NEXT_DUE

    database = tmp_path / "t.db"
    engine = make_engine(f"sqlite:///{database}")
    migrate.upgrade(engine)
    writer = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        assert outbox.stopped(engine, "+33939000021", "+33612345678") == (False, False)
        assert driver_read(engine, _NEXT_DUE, {}).scalar() is None
        writer.execute("ROLLBACK")
    finally:
        writer.close()
        engine.dispose()
