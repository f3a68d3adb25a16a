"""`antirelou db restore BACKUP`: put a backup (`antirelou db backup`) back in place of the
SQLite database, safely.

Restoring by hand has a trap: a copy put where the database was, beside the old database's
`-wal` file, gets that file's pages applied to it by SQLite on the next open, and is ruined.
This command:
- checks the backup first (a copy of it, beside the database): SQLite's integrity check, its
  schema (one this version knows), its evidence chain (a broken one is refused unless asked);
- takes the database for itself, which it can only do when no `serve`, `worker` or other
  command has it open (it says so, and changes nothing, otherwise); it switches it out of
  WAL mode, which folds the `-wal` file in and removes it;
- keeps the current database beside, under a dated name (nothing is ever deleted), then
  renames the checked copy into place, in one step;
- adds the texts the backup's inbox held (queued intake) to the inbox, to be decided when
  the worker starts: receive() keeps once a text the restored database already has.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, select

from antirelou import inbox, models
from antirelou.backup import (
    OWNER_ONLY,
    BackupError,
    copy_snapshot,
    read_copy,
    remove_partial,
    seal,
    sqlite_only,
)
from antirelou.db import make_engine
from antirelou.dbfiles import inbox_path
from antirelou.dbutil import insert_or_ignore
from antirelou.evidence.verify import Report
from antirelou.keyfiles import give_to_owner_of
from antirelou.service import Service
from antirelou.settings import Settings

IN_USE_WAIT_S = 1.0


@dataclass(frozen=True)
class Restored:
    path: Path
    kept: Path | None  # the database it replaced, kept under a dated name
    revision: str
    evidence: Report
    reparked: int  # texts of the backup's inbox added to the inbox


def restore(settings: Settings, backup: Path, *, even_if_broken: bool = False) -> Restored:
    """Put `backup` in place of the database; raise BackupError, changing nothing, when it
    cannot be done safely."""
    live = sqlite_only(
        settings.database_url,
        "restore() puts back a SQLite database file (PostgreSQL: pgbackup.restore_postgres)",
    )
    if not backup.is_file():
        raise BackupError(f"no backup at {backup}")
    if live.exists() and backup.resolve() == live.resolve():
        raise BackupError(f"{backup} is the database itself")
    live.parent.mkdir(parents=True, exist_ok=True)
    staging = copy_snapshot(backup, live)
    try:
        evidence, revision = _checked(settings, staging, even_if_broken)
        seal(staging)
        with _taken(live):
            kept = _keep(live)
            with staging.open("rb") as handle:  # run as root: the service must own it
                give_to_owner_of(handle.fileno(), live.parent)
            os.replace(staging, live)
    finally:
        remove_partial(staging)
    return Restored(live, kept, revision, evidence, _repark(settings, inbox_path(backup)))


def _checked(settings: Settings, copy: Path, even_if_broken: bool) -> tuple[Report, str]:
    try:
        revision, evidence = read_copy(settings, copy)
    except BackupError:
        raise
    except Exception as error:  # not a database, or not antirelou's
        raise BackupError(f"the backup cannot be read as antirelou's database: {error}") from None
    if not evidence.ok and not even_if_broken:
        raise BackupError(
            f"the backup's evidence chain is broken ({evidence.first}); `antirelou evidence "
            "verify` on it says more. --even-if-broken restores it anyway"
        )
    return evidence, revision


@contextmanager
def _taken(live: Path) -> Iterator[None]:
    """Hold the database alone, out of WAL mode, while it is swapped; refuse if it is open."""
    if not live.exists():
        yield
        return
    in_use = BackupError(
        f"{live} is open (serve, worker or another command): stop them, then restore"
    )
    with closing(sqlite3.connect(live, timeout=IN_USE_WAIT_S, isolation_level=None)) as conn:
        try:
            (mode,) = conn.execute("PRAGMA journal_mode=DELETE").fetchone()
            if mode != "delete":
                raise in_use
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError:
            raise in_use from None
        yield


_KEPT = ".before-restore-"  # the replaced database is kept as <name>.before-restore-<stamp>
_KEPT_STAMP = "%Y%m%dT%H%M%SZ"


def _keep(live: Path) -> Path | None:
    """A copy of the database being replaced, beside it (held alone: complete in one file)."""
    if not live.exists():
        return None
    stamp = datetime.now(UTC).strftime(_KEPT_STAMP)
    kept = live.with_name(f"{live.name}{_KEPT}{stamp}")
    shutil.copyfile(live, kept)
    os.chmod(kept, OWNER_ONLY)
    return kept


def replaced_copies(live: Path) -> list[tuple[datetime, Path]]:
    """The copies _keep() left beside `live`, with when each was made, oldest first."""
    found = []
    for copy in live.parent.glob(f"{live.name}{_KEPT}*"):
        try:
            made = datetime.strptime(copy.name.rpartition(_KEPT)[2], _KEPT_STAMP)
        except ValueError:  # not one of ours
            continue
        found.append((made.replace(tzinfo=UTC), copy))
    return sorted(found)


def _repark(settings: Settings, backup_inbox: Path) -> int:
    """Add the backup's waiting texts to the inbox (keeping any text already there)."""
    if not backup_inbox.is_file():
        return 0
    i = models.inbox
    # Read only, without make_engine's pragmas (they would write WAL mode into it).
    source = create_engine(f"sqlite:///file:{backup_inbox}?mode=ro&uri=true")
    service = Service(settings, make_engine(settings.database_url))
    try:
        with source.connect() as conn:
            rows = conn.execute(select(i.c.provider, i.c.provider_id, i.c.received_at, i.c.sms))
            waiting = [row._asdict() for row in rows]
        with inbox.engine_of(service).begin() as conn:
            for row in waiting:
                conn.execute(insert_or_ignore(conn, i, ["provider", "provider_id"], **row))
    finally:
        service.dispose()
        source.dispose()
    return len(waiting)
