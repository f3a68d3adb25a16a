"""`antirelou db backup`: a checked copy of the SQLite database, taken while texts come in."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from antirelou import inbox, migrate, models
from antirelou.backup import BackupError, back_up
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.inbound import receive
from antirelou.operations import record_backup
from antirelou.readiness import findings
from antirelou.service import Service
from tests.helpers import make_settings, sms, table_rows, texts_arriving
from tests.test_cli import antirelou, config_text


@pytest.fixture
def live(tmp_path: Path, clock: VirtualClock) -> Iterator[Service]:
    """A SQLite service (the only database a file copy is for) that has seen a few texts."""
    url = f"sqlite:///{tmp_path / 'antirelou.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    service = Service(make_settings(url), engine, clock)
    service.sync_lines()
    for n in range(5):
        receive(service, sms(sender=f"+336123456{n:02d}"))
    yield service
    service.dispose()


def rows(database: Path) -> dict[str, int]:
    """Every table's row count, read without opening it for writing (no WAL switch)."""
    return table_rows(f"sqlite:///file:{database}?mode=ro&uri=true")


def journal_mode(database: Path) -> str:
    with closing(sqlite3.connect(database)) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


def audit_rows(service: Service) -> list[Any]:
    with service.engine.connect() as conn:
        return list(conn.execute(select(models.audit_log).order_by(models.audit_log.c.id)))


def live_file(service: Service) -> Path:
    return Path(str(service.engine.url.database))


def test_the_copy_holds_every_row_in_one_file_only_its_owner_reads(
    live: Service, tmp_path: Path
) -> None:
    dest = tmp_path / "backups" / "antirelou-2017-10-27.db"
    dest.parent.mkdir()
    done = back_up(live.settings, dest)
    assert rows(dest) == rows(live_file(live))
    assert rows(dest)["messages"] == 5
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600, "it holds phone numbers"
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name], "nothing beside it"
    assert journal_mode(dest) == "delete", "one self-contained file"
    assert done.evidence.ok
    assert done.evidence.records == rows(dest)["evidence_records"] > 0
    assert done.revision == migrate.head_revision()
    assert done.inbox is None


def test_a_backup_is_never_overwritten(live: Service, tmp_path: Path) -> None:
    dest = tmp_path / "kept.db"
    dest.write_bytes(b"last week's backup")
    with pytest.raises(BackupError, match="never overwritten"):
        back_up(live.settings, dest)
    assert dest.read_bytes() == b"last week's backup"
    assert not list(tmp_path.glob(".kept.db*")), "no partial copy left behind"


def test_the_file_copy_is_for_sqlite_only(tmp_path: Path) -> None:
    """PostgreSQL is pg_dump's (pgbackup.py, tests/test_pgbackup.py)."""
    settings = make_settings("postgresql+psycopg://antirelou@db.invalid/antirelou")
    with pytest.raises(BackupError, match="copies a SQLite database file"):
        back_up(settings, tmp_path / "copy.db")
    assert not list(tmp_path.iterdir())


def test_texts_keep_coming_while_backups_are_taken(live: Service, tmp_path: Path) -> None:
    """Each copy is a consistent snapshot: sound, its chain intact, never fewer texts than
    the one before, whatever the writer was doing when it was taken."""
    counts = []
    with texts_arriving(live):
        for i in range(4):
            done = back_up(live.settings, tmp_path / f"copy{i}.db")
            assert done.evidence.ok, done.evidence.problems
            counts.append(rows(done.path)["messages"])
    assert counts == sorted(counts)
    assert counts[-1] <= rows(live_file(live))["messages"]
    assert counts[-1] > 5, "texts came in while the copies were taken"


def test_the_inbox_of_texts_waiting_for_their_decision_is_copied_beside(
    tmp_path: Path, clock: VirtualClock
) -> None:
    url = f"sqlite:///{tmp_path / 'antirelou.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    service = Service(make_settings(url, web={"intake": "queued"}), engine, clock)
    with inbox.engine_of(service).begin() as conn:
        inbox.park(conn, sms(body="en attente"), clock.now())
    try:
        done = back_up(service.settings, tmp_path / "copy.db")
    finally:
        service.dispose()
    assert done.inbox == tmp_path / "copy.inbox.db"
    with closing(sqlite3.connect(done.inbox)) as conn:
        (parked,) = conn.execute("SELECT sms FROM inbox").fetchall()
    assert "en attente" in parked[0]
    assert stat.S_IMODE(done.inbox.stat().st_mode) == 0o600


def test_the_command_reports_a_broken_chain_and_keeps_the_copy(
    live: Service, tmp_path: Path
) -> None:
    """A copy of tampered evidence is evidence of the tampering: kept, and exit 1 so that a
    scheduled backup makes noise."""
    database = live_file(live)
    config = tmp_path / "antirelou.toml"
    config.write_text(config_text(database), encoding="utf-8")
    good = antirelou("db", "backup", "--config", str(config), str(tmp_path / "good.db"))
    assert good.returncode == 0, good.stderr
    assert "OK: the copy's evidence log verifies: 5 records" in good.stdout
    assert "evidence.key" in good.stdout, "the key to keep apart is named"
    (made,) = [row for row in audit_rows(live) if row.action == "database_backup"]
    assert made.target == str(tmp_path / "good.db")
    assert made.actor.startswith("cli:")
    with closing(sqlite3.connect(database)) as conn, conn:
        conn.execute("UPDATE evidence_records SET content = '{}' WHERE seq = 2")
    broken = antirelou("db", "backup", "--config", str(config), str(tmp_path / "bad.db"))
    assert broken.returncode == 1
    assert "BROKEN" in broken.stderr
    assert (tmp_path / "bad.db").exists()


def test_check_says_how_old_the_newest_backup_is(
    live: Service, tmp_path: Path, clock: VirtualClock
) -> None:
    def said() -> list[str]:
        return [f"{f.level.value} {f.text}" for f in findings(live) if "backups" in f.text]

    assert said() == [
        "warn backups: none made yet: `antirelou db backup DEST` (docs/deployment.md, Backups)"
    ]
    record_backup(live, "/backups/a.db", 1000, 5, "cli:alice")
    clock.advance(timedelta(hours=5))
    assert said() == ["ok backups: the last one was made 5 hours ago, to /backups/a.db"]
    clock.advance(timedelta(days=8))
    assert said() == ["warn backups: the last one was made 8 days ago, to /backups/a.db"]
