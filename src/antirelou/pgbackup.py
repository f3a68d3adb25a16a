"""`antirelou db backup` and `db restore` on PostgreSQL: pg_dump, checked in the very snapshot
it copies; pg_restore, into an empty database only.

pg_dump alone copies a consistent snapshot but checks nothing, and a collective finds out
the day it restores that the archive was cut short or its evidence already broken. Here a
read-only REPEATABLE READ transaction exports its snapshot, pg_dump copies exactly that
snapshot (`--snapshot`), and meanwhile the transaction checks the evidence chain it sees:
the report printed is the report of what the archive holds, not of the live database a
second later. Then pg_restore reads the whole archive back (every table's data, each block
decompressed) and must find every table of the snapshot in it. Only then does the archive,
readable by its owner only, take its name: DEST is a finished, checked backup, never
overwritten.

A restore never writes over data: it goes into an empty database (a new one, made with
createdb), after the archive's schema was found to be one this version knows, and its
evidence is then checked where it landed.

The password never appears on pg_dump's command line (other users of the machine can read
command lines): it is handed over in its environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

from antirelou import migrate
from antirelou.backup import Backup, BackupError, check_dest, known_revision, open_partial
from antirelou.db import null_pool_engine
from antirelou.evidence.settings import evidence_settings
from antirelou.evidence.verify import Report, verify_connection
from antirelou.settings import Settings

TOOLS = "apt-get install -y postgresql-client"


def back_up_postgres(settings: Settings, dest: Path) -> Backup:
    """pg_dump the database to `dest` (which must not exist), checked; raise BackupError."""
    check_dest(dest)
    dump_tool, restore_tool = _tool("pg_dump"), _tool("pg_restore")
    engine = null_pool_engine(settings.database_url)
    partial = open_partial(dest)
    try:
        revision, evidence, tables = _dump(engine, settings, dump_tool, partial)
        _read_back(restore_tool, partial, tables)
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
        engine.dispose()
    return Backup(dest, dest.stat().st_size, revision, evidence, None)


def restore_postgres(settings: Settings, archive: Path) -> tuple[str, Report]:
    """pg_restore `archive` into the configured database, which must be empty; its schema
    revision and the restored evidence's report. BackupError, with nothing written, when
    the database holds tables or the archive is not one this version can restore."""
    tool = _tool("pg_restore")
    engine = null_pool_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
        if tables:
            raise BackupError(
                f"the database already holds {len(tables)} tables: restore into a new, empty "
                "one (createdb), then point database_url at it; nothing was changed"
            )
        revision = known_revision(_archived_revision(tool, archive))
        restore = [tool, "--no-owner", "--exit-on-error", "--single-transaction"]
        target = f"--dbname={_conninfo(settings.database_url)}"
        command = [*restore, "--no-password", target, str(archive)]
        _run(command, "pg_restore failed", _environment(settings.database_url))
        with engine.connect() as conn:
            evidence = verify_connection(conn, evidence_settings(settings))
        migrate.upgrade(engine)  # an older version's archive: to this version's schema
        return revision, evidence
    finally:
        engine.dispose()


def _archived_revision(tool: str, archive: Path) -> str | None:
    """The schema revision the archive holds (alembic_version's one row), read before any
    of it is restored."""
    command = [tool, "--data-only", "--table=alembic_version", "--file=-", str(archive)]
    script = _run(command, "pg_restore could not read the archive").splitlines()
    starts = [n for n, line in enumerate(script) if line.startswith("COPY ")]
    if not starts:
        return None
    row = script[starts[0] + 1]
    return None if row == "\\." else row.strip()


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed ({TOOLS})")
    return found


def _dump(
    engine: Engine, settings: Settings, tool: str, partial: Path
) -> tuple[str, Report, set[str]]:
    """pg_dump runs in our snapshot while we check that snapshot's schema and evidence."""
    snapshot_reader = engine.connect().execution_options(
        isolation_level="REPEATABLE READ", postgresql_readonly=True
    )
    with snapshot_reader as conn, conn.begin():
        snapshot = str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())
        command = [tool, "--format=custom", f"--snapshot={snapshot}", f"--file={partial}"]
        dump = subprocess.Popen(  # noqa: S603 - pg_dump from PATH, no shell
            [*command, "--no-password", f"--dbname={_conninfo(settings.database_url)}"],
            env=_environment(settings.database_url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            revision = known_revision(migrate.revision_of(conn))
            evidence = verify_connection(conn, evidence_settings(settings))
            tables = set(inspect(conn).get_table_names())
        except BaseException:
            dump.kill()  # no backup will be kept: no need to wait for the whole copy
            raise
        finally:
            # The snapshot lives as long as this transaction: pg_dump must be done first.
            _, errors = dump.communicate()
    if dump.returncode != 0:
        raise BackupError(f"pg_dump failed: {_last_lines(errors)}")
    return revision, evidence, tables


def _read_back(tool: str, archive: Path, tables: set[str]) -> None:
    """The whole archive read back (its data decompressed to nowhere), and every table of
    the snapshot's data in it."""
    listing = _run([tool, "--list", str(archive)], "pg_restore could not read the archive")
    _run([tool, "--file=/dev/null", str(archive)], "the archive does not read back whole")
    dumped = {_table_data(line) for line in listing.splitlines()}
    missing = sorted(tables - dumped)
    if missing:
        raise BackupError(f"the archive lacks the data of {', '.join(missing)}")


def _table_data(line: str) -> str | None:
    """The table of a `pg_restore --list` line such as
    `3428; 0 16390 TABLE DATA public messages postgres`."""
    _, marker, rest = line.partition(" TABLE DATA ")
    words = rest.split()
    return words[1] if marker and len(words) >= 2 else None


def _run(command: list[str], failure: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(  # noqa: S603 - pg_restore from PATH, no shell
        command, capture_output=True, text=True, check=False, env=env
    )
    if done.returncode != 0:
        raise BackupError(f"{failure}: {_last_lines(done.stderr)}")
    return done.stdout


def _last_lines(errors: str) -> str:
    return " / ".join(errors.strip().splitlines()[-3:]) or "no message"


def _conninfo(url: str) -> str:
    """The database URL as libpq reads it, without its password."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql", password=None).render_as_string()


def _environment(url: str) -> dict[str, str]:
    """This process's environment, plus the URL's password for libpq when it has one."""
    password = make_url(url).password
    return {**os.environ, **({} if password is None else {"PGPASSWORD": str(password)})}
