"""The statements every text, reply or tick runs find their rows through an index.

SQLite has no statistics here (nothing runs ANALYZE), so a statement that can use two
indexes may pick the one that reads every row a line ever had; a column with no index makes
each call read the whole table. Both cost nothing on a new database and grow with every
text: timings would not see them, the query plans do.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from antirelou import budget, dbutil, delivery, release
from antirelou.evidence import checkpoints
from antirelou.replay import run_replay
from tests.helpers import LINE, make_settings, raid_window

# Tables read whole on purpose: the configured lines, a handful of rows.
SMALL_TABLES = {"lines"}


def _plan(database: Path, sql: str) -> list[str]:
    with sqlite3.connect(database) as conn:
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, [None] * sql.count("?")).fetchall()
    return [str(row[3]) for row in rows]


@pytest.fixture(scope="module")
def raid_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A replayed raid's database (a fifth of the 2017 raid's first 20 minutes): every
    statement of the text, reply and tick paths has been compiled once it ran. Replayed
    once for the module: the tests only read its query plans."""
    tmp_path = tmp_path_factory.mktemp("raid")
    window = raid_window(tmp_path, timedelta(minutes=10), timedelta(minutes=20))
    settings = make_settings(
        "sqlite:///unused.db",
        lines=[{"number": LINE, "provider": "sandbox"}],
        evidence={"key_path": str(tmp_path / "evidence.key")},
    )
    run_replay(window, settings, tmp_path / "out", timedelta(hours=1), progress=False)
    return tmp_path / "out" / "replay.db"


def _plan_of(database: Path, statement: object, keys: tuple[str, ...]) -> list[str]:
    """The plan of a prebuilt statement, as driver_execute() runs it on SQLite."""
    return _plan(database, _sqlite_sql(statement, keys))


def _sqlite_sql(statement: object, keys: tuple[str, ...]) -> str:
    from antirelou.replay import _memory_engine

    engine = _memory_engine()
    try:
        with engine.connect() as conn:
            return dbutil._compiled(conn, statement, keys).sql  # type: ignore[arg-type]
    finally:
        engine.dispose()


def test_no_hot_statement_reads_a_whole_table(raid_db: Path) -> None:
    compiled = {
        driver_sql.sql
        for (_, dialect, _), (_, driver_sql) in dbutil._COMPILED.items()
        if dialect == "sqlite"
    }
    assert len(compiled) > 30, "the replay ran the text, reply and tick paths"
    whole = {
        " ".join(sql.split())[:100]: step
        for sql in compiled
        for step in _plan(raid_db, sql)
        if step.startswith("SCAN ")
        and step.split()[1] not in SMALL_TABLES
        and " USING " not in step  # an index walked in order (ORDER BY ... LIMIT 1)
        and "CONSTANT ROW" not in step
        and not step.split()[1].startswith("anon_")  # a subquery's own rows
    }
    assert whole == {}


def test_each_send_finds_early_receipts_by_the_providers_id(raid_db: Path) -> None:
    plan = _plan_of(raid_db, delivery._EARLY, ("pmid",))
    assert any("ix_status_events_provider_message_id" in step for step in plan), plan


def test_the_held_sweep_reads_the_held_replies_only(raid_db: Path) -> None:
    """Not every reply of the line through its (line, released_at) index."""
    plan = _plan_of(raid_db, release._HELD, ())
    assert any("ix_replies_status_due" in step for step in plan), plan
    assert not any("ix_replies_line_released" in step for step in plan), plan


def test_the_tick_finds_incident_records_without_walking_the_others(raid_db: Path) -> None:
    """Not every record since the last checkpoint (one a text) on every tick."""
    plan = _plan_of(raid_db, checkpoints._INCIDENT_SINCE, ("after",))
    assert any("ix_evidence_records_incidents" in step for step in plan), plan


def test_the_budget_read_takes_the_inbound_shards_as_one_range(raid_db: Path) -> None:
    """Not sixteen lookups of a list on every text (4 of the read's 7 microseconds)."""
    plan = _plan_of(raid_db, budget._totals_statement("sqlite"), ("day",))
    assert any("PRIMARY KEY (key>? AND key<?)" in step for step in plan), plan
