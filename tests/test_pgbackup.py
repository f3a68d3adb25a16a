"""`antirelou db backup` on PostgreSQL: a pg_dump archive of the snapshot whose evidence is
checked, read back whole before it takes its name. Needs TEST_POSTGRES_URL."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from antirelou import migrate, models
from antirelou.backup import BackupError
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.evidence.tables import evidence_records
from antirelou.evidence.verify import verify_database
from antirelou.inbound import receive
from antirelou.pgbackup import back_up_postgres, restore_postgres
from antirelou.readiness import findings
from antirelou.service import Service
from tests.conftest import POSTGRES_URL, fresh_postgres
from tests.helpers import make_settings, sms, texts_arriving
from tests.helpers import table_rows as rows
from tests.test_cli import antirelou, config_text


@pytest.fixture
def pg_url(postgres_template: str) -> Iterator[str]:
    yield from fresh_postgres()


@pytest.fixture
def live(pg_url: str, clock: VirtualClock) -> Iterator[Service]:
    """A PostgreSQL service that has seen a few texts."""
    service = Service(make_settings(pg_url), make_engine(pg_url), clock)
    service.sync_lines()
    for n in range(5):
        receive(service, sms(sender=f"+336123456{n:02d}"))
    yield service
    service.dispose()


@pytest.fixture
def empty_url() -> Iterator[str]:
    """An empty database (no schema) to restore an archive into."""
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured (set TEST_POSTGRES_URL)")
    yield from fresh_postgres(template="template0")


def pg_restore(archive: Path, url: str) -> None:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={conninfo}", str(archive)],
        check=True,
        capture_output=True,
    )


def restored_service(url: str, clock: VirtualClock) -> Service:
    return Service(make_settings(url), make_engine(url), clock)


def fake_tool(monkeypatch: pytest.MonkeyPatch, folder: Path, name: str, script: str) -> None:
    """`name`, first on the PATH: `script` (sh), which may call the real tool as $REAL."""
    folder.mkdir(exist_ok=True)
    tool = folder / name
    tool.write_text(f"#!/bin/sh\nREAL={shutil.which(name)}\n{script}\n", encoding="utf-8")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")


def test_the_archive_restores_every_row_and_its_evidence_verifies(
    live: Service, empty_url: str, tmp_path: Path, clock: VirtualClock
) -> None:
    dest = tmp_path / "antirelou-2017-10-27.dump"
    done = back_up_postgres(live.settings, dest)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600, "it holds phone numbers"
    assert sorted(p.name for p in tmp_path.iterdir()) == [dest.name], "no partial left"
    assert done.evidence.ok
    assert done.evidence.records == 5
    assert done.revision == migrate.head_revision()
    pg_restore(dest, empty_url)
    assert rows(empty_url) == rows(live.settings.database_url)
    assert rows(empty_url)["messages"] == 5
    restored = restored_service(empty_url, clock)
    try:
        assert verify_database(restored).ok
    finally:
        restored.dispose()


def test_the_report_is_of_the_snapshot_the_archive_holds(
    live: Service, empty_url: str, tmp_path: Path
) -> None:
    """Texts keep coming while pg_dump runs: the evidence checked and the evidence copied are
    the same records, to the last one, not the live log a moment later."""
    with texts_arriving(live):
        while rows(live.settings.database_url)["messages"] < 30:
            time.sleep(0.01)
        done = back_up_postgres(live.settings, tmp_path / "busy.dump")
    pg_restore(tmp_path / "busy.dump", empty_url)
    copied = rows(empty_url)["evidence_records"]
    assert done.evidence.ok
    assert done.evidence.records == copied
    assert copied < rows(live.settings.database_url)["evidence_records"], "texts came after"


def test_a_broken_chain_is_reported_and_the_archive_kept(live: Service, tmp_path: Path) -> None:
    with live.engine.begin() as conn:
        conn.execute(
            evidence_records.update().where(evidence_records.c.seq == 2).values(content="{}")
        )
    done = back_up_postgres(live.settings, tmp_path / "bad.dump")
    assert not done.evidence.ok
    first = done.evidence.first
    assert first is not None
    assert first.seq == 2
    assert (tmp_path / "bad.dump").exists(), "a copy of tampered evidence is evidence of it"


def test_an_existing_file_is_never_overwritten(live: Service, tmp_path: Path) -> None:
    dest = tmp_path / "kept.dump"
    dest.write_bytes(b"last week's backup")
    with pytest.raises(BackupError, match="never overwritten"):
        back_up_postgres(live.settings, dest)
    assert dest.read_bytes() == b"last week's backup"


def test_the_password_goes_in_the_environment_not_on_the_command_line(
    live: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any user of the machine can read a process's command line (ps)."""
    tools = tmp_path / "bin"
    seen = tmp_path / "seen"
    record = f'echo "$@" > {seen}; echo "$PGPASSWORD" >> {seen}'
    fake_tool(monkeypatch, tools, "pg_dump", f'{record}; exec $REAL "$@"')
    url = make_url(live.settings.database_url).set(password="s3cret-Pw")  # trust: not checked
    settings = make_settings(url.render_as_string(hide_password=False))
    back_up_postgres(settings, tmp_path / "copy.dump")
    arguments, environment = seen.read_text(encoding="utf-8").splitlines()
    assert "s3cret-Pw" not in arguments
    assert "--snapshot=" in arguments, "pg_dump copies the snapshot that was checked"
    assert environment == "s3cret-Pw"


def test_pg_dump_failing_leaves_nothing(
    live: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = tmp_path / "bin"
    fake_tool(
        monkeypatch,
        tools,
        "pg_dump",
        'echo "pg_dump: error: server closed the connection" >&2; exit 1',
    )
    with pytest.raises(BackupError, match="pg_dump failed: pg_dump: error: server closed"):
        back_up_postgres(live.settings, tmp_path / "copy.dump")
    assert [p.name for p in tmp_path.iterdir()] == ["bin"]


def test_an_archive_cut_short_is_refused(
    live: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg_dump said it was done, but the file is not whole (a disk that lied, a full disk
    it did not notice): the archive is read back, and refused."""
    tools = tmp_path / "bin"
    cut = 'for a in "$@"; do case $a in --file=*) f=${a#--file=};; esac; done; '
    fake_tool(monkeypatch, tools, "pg_dump", f'$REAL "$@" || exit 1; {cut}truncate -s -2000 "$f"')
    with pytest.raises(BackupError, match=r"read back|could not read"):
        back_up_postgres(live.settings, tmp_path / "copy.dump")
    assert [p.name for p in tmp_path.iterdir()] == ["bin"]


def test_missing_tools_are_named(
    live: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackupError, match=r"pg_dump is not installed \(apt-get install"):
        back_up_postgres(live.settings, tmp_path / "copy.dump")


def test_the_command_backs_up_audits_and_check_sees_it(
    live: Service, tmp_path: Path, clock: VirtualClock
) -> None:
    config = tmp_path / "antirelou.toml"
    sqlite_line = f'database_url = "sqlite:///{tmp_path / "unused.db"}"'
    pg_line = f'database_url = "{live.settings.database_url}"'
    config.write_text(
        config_text(tmp_path / "unused.db").replace(sqlite_line, pg_line), encoding="utf-8"
    )
    assert [f.text for f in findings(live) if "backups" in f.text] == [
        "backups: none made yet: `antirelou db backup DEST` (docs/deployment.md, Backups)"
    ]
    done = antirelou("db", "backup", "--config", str(config), str(tmp_path / "night.dump"))
    assert done.returncode == 0, done.stderr
    assert "OK: the copy's evidence log verifies: 5 records" in done.stdout
    assert f"backed up to {tmp_path / 'night.dump'}" in done.stdout
    with live.engine.connect() as conn:
        a = models.audit_log
        (made,) = conn.execute(select(a).where(a.c.action == "database_backup")).all()
    assert made.target == str(tmp_path / "night.dump")
    clock.set(made.at)
    assert [f.text for f in findings(live) if "backups" in f.text] == [
        f"backups: the last one was made 0 minutes ago, to {tmp_path / 'night.dump'}"
    ]


def test_an_archive_without_a_table_s_data_is_refused(
    live: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pg_dump told to leave a table's rows out (a wrapper, an old alias) is caught."""
    tools = tmp_path / "bin"
    fake_tool(monkeypatch, tools, "pg_dump", 'exec $REAL "$@" --exclude-table-data=senders')
    with pytest.raises(BackupError, match="the archive lacks the data of senders"):
        back_up_postgres(live.settings, tmp_path / "copy.dump")
    assert [p.name for p in tmp_path.iterdir()] == ["bin"]


# --- restore ---------------------------------------------------------------------------


def config_for(url: str, tmp_path: Path) -> Path:
    config = tmp_path / "antirelou.toml"
    sqlite_line = f'database_url = "sqlite:///{tmp_path / "unused.db"}"'
    text = config_text(tmp_path / "unused.db").replace(sqlite_line, f'database_url = "{url}"')
    config.write_text(text, encoding="utf-8")
    return config


def audit_actions(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            a = models.audit_log
            return list(conn.execute(select(a.c.action).order_by(a.c.id)).scalars())
    finally:
        engine.dispose()


def test_restore_puts_the_archive_into_an_empty_database(
    live: Service, empty_url: str, tmp_path: Path
) -> None:
    archive = tmp_path / "night.dump"
    back_up_postgres(live.settings, archive)
    config = config_for(empty_url, tmp_path)
    done = antirelou("db", "restore", "--config", str(config), str(archive))
    assert done.returncode == 0, done.stderr
    assert "OK: the restored evidence log verifies: 5 records" in done.stdout
    assert f"restored {archive} (schema {migrate.head_revision()})" in done.stdout
    restored, backed_up = rows(empty_url), rows(live.settings.database_url)
    for grown in ("audit_log", "evidence_records"):  # the restore's own audit record
        assert restored.pop(grown) == backed_up.pop(grown) + 1
    assert restored == backed_up
    assert restored["messages"] == 5
    assert audit_actions(empty_url)[-1] == "database_restore"


def test_restore_never_writes_over_a_database_that_holds_tables(
    live: Service, tmp_path: Path
) -> None:
    archive = tmp_path / "night.dump"
    back_up_postgres(live.settings, archive)
    receive(live, sms(sender="+33612999999", provider_id="SMafter"))
    before = rows(live.settings.database_url)
    config = config_for(live.settings.database_url, tmp_path)
    done = antirelou("db", "restore", "--config", str(config), str(archive))
    assert done.returncode == 1
    assert "already holds" in done.stderr
    assert "new, empty one (createdb)" in done.stderr
    assert rows(live.settings.database_url) == before, "nothing was changed"


def test_restore_refuses_a_newer_schema_before_writing_anything(
    live: Service, empty_url: str, tmp_path: Path
) -> None:
    with live.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    archive = tmp_path / "future.dump"
    with pytest.raises(BackupError, match="unknown to this version"):
        back_up_postgres(live.settings, archive)  # the backup says so too
    conninfo = make_url(live.settings.database_url).set(drivername="postgresql")
    dump = ["pg_dump", "--format=custom", f"--file={archive}"]
    subprocess.run([*dump, conninfo.render_as_string(hide_password=False)], check=True)
    with pytest.raises(BackupError, match=r"schema \(9999_from_the_future\) is unknown"):
        restore_postgres(make_settings(empty_url), archive)
    assert rows(empty_url) == {}, "nothing restored"


def test_restore_refuses_a_file_that_is_not_an_archive(empty_url: str, tmp_path: Path) -> None:
    archive = tmp_path / "notes.txt"
    archive.write_text("not a backup", encoding="utf-8")
    with pytest.raises(BackupError, match="pg_restore could not read the archive"):
        restore_postgres(make_settings(empty_url), archive)
    assert rows(empty_url) == {}


def test_restore_of_broken_evidence_exits_1_unless_asked(
    live: Service, tmp_path: Path, postgres_template: str
) -> None:
    with live.engine.begin() as conn:
        conn.execute(
            evidence_records.update().where(evidence_records.c.seq == 3).values(content="{}")
        )
    archive = tmp_path / "bad.dump"
    back_up_postgres(live.settings, archive)
    for flags, code in (((), 1), (("--even-if-broken",), 0)):
        target = fresh_postgres(template="template0")
        url = next(target)
        try:
            config = config_for(url, tmp_path)
            done = antirelou("db", "restore", "--config", str(config), *flags, str(archive))
            assert done.returncode == code, done.stderr
            assert "BROKEN" in done.stderr
            assert "the backup as it was" in done.stderr or code == 0
        finally:
            target.close()


def test_restore_hands_the_password_in_the_environment(
    live: Service, empty_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "night.dump"
    back_up_postgres(live.settings, archive)
    tools = tmp_path / "bin"
    seen = tmp_path / "seen"
    fake_tool(
        monkeypatch, tools, "pg_restore", f'echo "$@ | $PGPASSWORD" >> {seen}; exec $REAL "$@"'
    )
    url = make_url(empty_url).set(password="s3cret-Pw")  # trust: not checked
    restore_postgres(make_settings(url.render_as_string(hide_password=False)), archive)
    (into,) = [line for line in seen.read_text(encoding="utf-8").splitlines() if "--dbname" in line]
    arguments, password = into.split(" | ")
    assert "s3cret-Pw" not in arguments
    assert password == "s3cret-Pw"
