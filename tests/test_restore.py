"""`antirelou db restore`: a checked backup put back in place, never over a database in use,
never with the old database's WAL applied to it, and the replaced database kept."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from antirelou import inbox, migrate
from antirelou.backup import BackupError, back_up
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.inbound import receive
from antirelou.readiness import Level, findings
from antirelou.restore import restore
from antirelou.service import Service
from antirelou.settings import Settings
from tests.helpers import make_settings, sms
from tests.test_cli import antirelou, config_text


def sqlite_service(folder: Path, clock: VirtualClock, **overrides: object) -> Service:
    url = f"sqlite:///{folder / 'antirelou.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    service = Service(make_settings(url, **overrides), engine, clock)
    service.sync_lines()
    return service


@pytest.fixture
def backed_up(tmp_path: Path, clock: VirtualClock) -> tuple[Settings, Path]:
    """Five texts, a backup, then three more texts, and the service stopped."""
    service = sqlite_service(tmp_path, clock)
    for n in range(5):
        receive(service, sms(sender=f"+336123456{n:02d}", body="avant"))
    backup = back_up(service.settings, tmp_path / "backup.db").path
    for n in range(3):
        receive(service, sms(sender=f"+336987654{n:02d}", body="après"))
    service.dispose()
    return service.settings, backup


def bodies(database: Path) -> list[str]:
    with closing(sqlite3.connect(database)) as conn:
        return [body for (body,) in conn.execute("SELECT body FROM messages ORDER BY id")]


def live(settings: Settings) -> Path:
    return Path(settings.database_url.removeprefix("sqlite:///"))


def test_a_backup_is_put_back_and_the_database_it_replaces_is_kept(
    backed_up: tuple[Settings, Path],
) -> None:
    settings, backup = backed_up
    done = restore(settings, backup)
    assert bodies(done.path) == ["avant"] * 5
    assert done.kept is not None
    assert bodies(done.kept) == ["avant"] * 5 + ["après"] * 3, "nothing is ever deleted"
    assert done.evidence.ok
    assert done.evidence.records == 5
    assert sorted(p.name for p in done.path.parent.iterdir() if "antirelou.db" in p.name) == [
        "antirelou.db",
        done.kept.name,
    ], "no -wal, -shm or staging copy left beside it"


def test_a_database_in_use_is_left_alone(
    backed_up: tuple[Settings, Path], clock: VirtualClock
) -> None:
    settings, backup = backed_up
    running = Service(settings, make_engine(settings.database_url), clock)
    try:
        receive(running, sms(sender="+33611111111"))  # its pool keeps the connection open
        with pytest.raises(BackupError, match="is open"):
            restore(settings, backup)
        assert bodies(live(settings)) == ["avant"] * 5 + ["après"] * 3 + ["Salut"]
    finally:
        running.dispose()
    assert not list(live(settings).parent.glob("*before-restore*"))
    assert not list(live(settings).parent.glob(".*partial"))


def test_the_old_databases_wal_never_reaches_the_restored_copy(
    backed_up: tuple[Settings, Path],
) -> None:
    """A process that died with changes only in its -wal file: copied by hand beside that
    file, the backup would get those pages on the next open. Here they go to the kept copy."""
    settings, backup = backed_up
    crash = (
        "import os, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('PRAGMA wal_autocheckpoint=0')\n"
        "c.execute(\"UPDATE messages SET body = 'dans le wal'\")\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", crash, str(live(settings))], check=True, timeout=30)
    assert Path(f"{live(settings)}-wal").stat().st_size > 0
    done = restore(settings, backup)
    assert bodies(done.path) == ["avant"] * 5
    assert done.kept is not None
    assert bodies(done.kept) == ["dans le wal"] * 8


def test_a_backup_with_broken_evidence_is_refused_unless_asked(
    backed_up: tuple[Settings, Path],
) -> None:
    settings, backup = backed_up
    with closing(sqlite3.connect(backup)) as conn, conn:
        conn.execute("UPDATE evidence_records SET content = '{}' WHERE seq = 3")
    with pytest.raises(BackupError, match="evidence chain is broken"):
        restore(settings, backup)
    assert len(bodies(live(settings))) == 8, "nothing changed"
    done = restore(settings, backup, even_if_broken=True)
    assert not done.evidence.ok
    assert len(bodies(done.path)) == 5


@pytest.mark.parametrize("spoil", ["newer schema", "not a database"])
def test_a_backup_this_version_cannot_take_is_refused(
    backed_up: tuple[Settings, Path], spoil: str
) -> None:
    settings, backup = backed_up
    if spoil == "newer schema":
        with closing(sqlite3.connect(backup)) as conn, conn:
            conn.execute("UPDATE alembic_version SET version_num = '9999'")
    else:
        backup.write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError, match=r"newer antirelou|cannot be read|could not copy"):
        restore(settings, backup)
    assert len(bodies(live(settings))) == 8
    assert not list(live(settings).parent.glob(".*partial*"))


def test_on_a_new_machine_the_backup_and_its_waiting_texts_are_put_in_place(
    tmp_path: Path, clock: VirtualClock
) -> None:
    old = sqlite_service(tmp_path / "old", clock, web={"intake": "queued"})
    receive(old, sms(sender="+33612345601"))
    with inbox.engine_of(old).begin() as conn:
        inbox.park(conn, sms(sender="+33612345602", body="en attente"), clock.now())
    backup = back_up(old.settings, tmp_path / "backup.db").path
    old.dispose()
    url = f"sqlite:///{tmp_path / 'new' / 'var' / 'antirelou.db'}"
    settings = old.settings.model_copy(update={"database_url": url})
    done = restore(settings, backup)
    assert done.kept is None
    assert done.reparked == 1
    assert bodies(done.path) == ["Salut"]
    fresh = Service(settings, make_engine(url), clock)
    try:
        assert inbox.decide_parked(fresh, 10).texts == 1
    finally:
        fresh.dispose()
    assert bodies(done.path) == ["Salut", "en attente"]


def test_the_file_restore_is_for_sqlite_only(tmp_path: Path) -> None:
    settings = make_settings("postgresql+psycopg://antirelou@db.invalid/antirelou")
    backup = tmp_path / "backup.db"
    backup.write_bytes(b"x")
    with pytest.raises(BackupError, match=r"PostgreSQL: pgbackup\.restore_postgres"):
        restore(settings, backup)


def test_the_command_says_where_the_replaced_database_went_and_audits_the_restore(
    backed_up: tuple[Settings, Path], tmp_path: Path
) -> None:
    settings, backup = backed_up
    config = tmp_path / "antirelou.toml"
    config.write_text(config_text(live(settings)), encoding="utf-8")
    result = antirelou("db", "restore", "--config", str(config), str(backup))
    assert result.returncode == 0, result.stderr
    assert "the database it replaced is kept at" in result.stdout
    assert "OK: the restored evidence log verifies: 5 records" in result.stdout
    with closing(sqlite3.connect(live(settings))) as conn:
        audited = conn.execute("SELECT action, target FROM audit_log").fetchall()
    assert audited == [("database_restore", str(backup))]


def test_check_names_the_replaced_database_until_it_is_deleted(
    backed_up: tuple[Settings, Path],
) -> None:
    settings, backup = backed_up
    kept = restore(settings, backup).kept
    assert kept is not None
    clock = VirtualClock(datetime.now(UTC) + timedelta(days=1))
    service = Service(settings, make_engine(settings.database_url), clock)
    try:
        said = [f for f in findings(service) if f.text.startswith("restore:")]
        assert [f.level for f in said] == [Level.INFO]
        assert str(kept) in said[0].text
        assert "retention does not erase" in said[0].text
        clock.advance(timedelta(days=7))  # a week on, it is still there: a warning
        assert [f.level for f in findings(service) if f.text.startswith("restore:")] == [Level.WARN]
        kept.unlink()
        assert not [f for f in findings(service) if f.text.startswith("restore:")]
    finally:
        service.dispose()
