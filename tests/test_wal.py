"""The WAL checkpointer: commits leave the copying of SQLite's log to its own thread."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, insert

from antirelou.db import WAL_BACKSTOP_PAGES, make_engine
from antirelou.wal import WalCheckpointer

notes = Table(
    "notes",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("text", String(200), nullable=False),
)

COMMITS = 1_500  # more pages than SQLite's default autocheckpoint (1,000)


def _engine(tmp_path: Path) -> tuple[Engine, Path]:
    path = tmp_path / "wal.db"
    engine = make_engine(f"sqlite:///{path}", durable=False)  # no fsync: same checkpoints
    notes.create(engine)
    return engine, path


def _write(engine: Engine, commits: int) -> None:
    for i in range(commits):
        with engine.begin() as conn:
            conn.execute(insert(notes).values(text=f"note {i} " + "x" * 150))


def test_commits_do_not_checkpoint_below_the_backstop_the_checkpointer_does(
    tmp_path: Path,
) -> None:
    engine, path = _engine(tmp_path)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WAL_BACKSTOP_PAGES
    size_before = path.stat().st_size
    _write(engine, COMMITS)
    assert path.stat().st_size == size_before, "a commit copied the log into the database"
    busy, pages, copied = WalCheckpointer(engine).run_once()
    assert (busy, copied) == (0, pages)
    assert pages >= COMMITS
    assert path.stat().st_size > size_before
    engine.dispose()


def test_the_thread_checkpoints_on_its_own_and_stops(tmp_path: Path) -> None:
    engine, path = _engine(tmp_path)
    checkpointer = WalCheckpointer(engine, every=0.02)
    checkpointer.start()
    size_before = path.stat().st_size
    _write(engine, 200)
    deadline = time.monotonic() + 10
    while path.stat().st_size == size_before and time.monotonic() < deadline:
        time.sleep(0.02)
    checkpointer.stop()
    assert path.stat().st_size > size_before
    checkpointer.start()  # it can start again after a stop
    checkpointer.stop()
    engine.dispose()
