"""`antirelou db backup DEST`: a copy of the SQLite database, taken while the service runs,
checked before it is kept.

A collective under attack may lose its machine (a disk, a host that gives up, a seizure):
the evidence must outlive it. The copy is SQLite's online backup: a consistent snapshot
(readers do not block the service's writers in WAL mode) of every table, evidence included.
It is written beside DEST under a temporary name, readable by its owner only (it holds phone
numbers), made one self-contained file (no -wal beside it), checked (SQLite's integrity check,
then the evidence chain, as `evidence verify` does), and only then renamed to DEST: a DEST
that exists is a finished backup, never a half-written one, and is never overwritten.

The queued intake's inbox (texts parked for seconds before their decision) is copied beside
DEST when there is one. The key files are not copied: they are the instance's secrets, to be
kept apart from the data they protect (docs/deployment.md).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from antirelou import migrate
from antirelou.db import null_pool_engine
from antirelou.dbfiles import BESIDE, inbox_path, sqlite_path
from antirelou.evidence.verify import Report, verify_database
from antirelou.service import Service
from antirelou.settings import Settings

OWNER_ONLY = 0o600
BUSY_TIMEOUT_S = 30.0  # a backup waits for a writer's turn rather than failing


class BackupError(Exception):
    """Why no backup was written (nothing is left behind)."""


@dataclass(frozen=True)
class Backup:
    path: Path
    size: int
    revision: str
    evidence: Report
    inbox: Path | None  # the inbox's copy, when there was an inbox


def back_up(settings: Settings, dest: Path) -> Backup:
    """Copy the database to `dest` (which must not exist), checked; raise BackupError."""
    source = _live_file(settings.database_url)
    copies = [(source, dest)]  # (what, where to)
    if inbox_path(source).is_file():
        copies.append((inbox_path(source), inbox_path(dest)))
    for _, target in copies:
        check_dest(target)
    partials: dict[Path, Path] = {}  # where to: the copy under its temporary name
    try:
        # The inbox first: a text decided between the two snapshots is then in both
        # (receive() keeps it once when the restored inbox is decided), never in neither.
        for origin, target in reversed(copies):
            partials[target] = copy_snapshot(origin, target)
        revision, evidence = read_copy(settings, partials[dest])
        for target, partial in partials.items():
            seal(partial)
            os.replace(partial, target)
    finally:
        for partial in partials.values():
            remove_partial(partial)
    inbox = copies[1][1] if len(copies) > 1 else None
    return Backup(dest, dest.stat().st_size, revision, evidence, inbox)


def sqlite_only(url: str, elsewise: str) -> Path:
    """The SQLite database file of `url`; for another database, BackupError(`elsewise`)."""
    path = sqlite_path(url)
    if path is None:
        raise BackupError(f"{elsewise} (docs/deployment.md, Backups)")
    return path


def _live_file(url: str) -> Path:
    path = sqlite_only(url, "db backup copies a SQLite database file here")
    if not path.is_file():
        raise BackupError(f"no database at {path}")
    return path


def check_dest(dest: Path) -> None:
    if dest.exists():
        raise BackupError(f"{dest} exists: a backup is never overwritten, choose a new name")
    if not dest.parent.is_dir():
        raise BackupError(f"no folder {dest.parent}")


def copy_snapshot(source: Path, dest: Path) -> Path:
    """The snapshot, in a file beside `dest` that the caller renames or removes."""
    partial = open_partial(dest)
    try:
        live = closing(sqlite3.connect(source, timeout=BUSY_TIMEOUT_S))
        with live as connection, closing(sqlite3.connect(partial)) as copy:
            connection.backup(copy)
    except sqlite3.Error as error:
        remove_partial(partial)
        raise BackupError(f"could not copy {source}: {error}") from error
    return partial


def open_partial(dest: Path) -> Path:
    """An empty file beside `dest`, readable by its owner only, for the copy to be written
    into under a temporary name."""
    partial = dest.with_name(f".{dest.name}.partial")
    remove_partial(partial)  # a backup that died half-way
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY))
    return partial


def known_revision(revision: str | None) -> str:
    """`revision`, when this version's migrations know it; else BackupError."""
    if revision is None or not migrate.is_known(revision):
        raise BackupError(
            f"the schema ({revision}) is unknown to this version: a newer antirelou made it"
        )
    return revision


def read_copy(settings: Settings, copy: Path) -> tuple[str, Report]:
    """The copy's schema revision (one this version knows, or BackupError), then its
    evidence chain, checked as `evidence verify` checks the live one."""
    url = f"sqlite:///{copy}"
    engine = null_pool_engine(url)
    service = Service(settings.model_copy(update={"database_url": url}), engine)
    try:
        revision = known_revision(migrate.current_revision(engine))
        return revision, verify_database(service)
    finally:
        service.dispose()


def seal(copy: Path) -> None:
    """One self-contained file (the engine above put it in WAL mode, with files beside it),
    which SQLite finds sound."""
    with closing(sqlite3.connect(copy)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise BackupError("the copy fails SQLite's integrity check: " + "; ".join(problems[:5]))


def remove_partial(partial: Path) -> None:
    for file in (partial, *(partial.with_name(partial.name + end) for end in BESIDE)):
        file.unlink(missing_ok=True)
