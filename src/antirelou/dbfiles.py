"""The SQLite database's files and who may write them, checked before a command opens them.

A frequent first-day slip: `sudo antirelou users add ...` creates the database as root, and
the service, running as its own user, then cannot write it. SQLite would only say "attempt
to write a readonly database" at the first text, as a 500 to the provider; these checks say
what is wrong, and what to run, before anything starts.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url

BESIDE = ("-wal", "-shm", "-journal")  # files SQLite keeps beside the database


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for another database or one in memory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def inbox_path(database: Path) -> Path:
    """The queued intake's own file beside the database (inbox.py)."""
    return database.with_name(f"{database.stem}.inbox{database.suffix or '.db'}")


def write_problem(url: str) -> str | None:
    """Why this process could not write the SQLite database at `url` (or the files SQLite
    and the inbox keep beside it), or None."""
    path = sqlite_path(url)
    if path is None:
        return None
    for main in (path, inbox_path(path)):
        for file in (main, *(main.with_name(main.name + suffix) for suffix in BESIDE)):
            if file.exists() and not os.access(file, os.R_OK | os.W_OK):
                return _not_writable(file, path)
    folder = _existing_folder(path)
    if not os.access(folder, os.W_OK | os.X_OK):
        # SQLite creates its journal and WAL files beside the database.
        return _not_writable(folder, path)
    return None


def root_creates(url: str) -> str | None:
    """A warning when root is about to create the SQLite database: it will be root's."""
    path = sqlite_path(url)
    if path is None or path.exists() or not _is_root():
        return None
    return (
        f"creating {path} as root: it will be root's, and a service running as another "
        f"user will not be able to write it. If so, afterwards: chown USER: {path}*"
    )


def _not_writable(file: Path, database: Path) -> str:
    files = file if file.is_dir() else f"{database}*"
    return (
        f"{file} is not writable by {_user()} (it belongs to {_owner(file)}), so the "
        f"database {database} cannot be written. Run the command as the service's user, "
        f"or give it the files: chown USER: {files}"
    )


def _existing_folder(path: Path) -> Path:
    folder = path.parent.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _user() -> str:
    return _name_of(os.geteuid()) if hasattr(os, "geteuid") else "this user"


def _owner(file: Path) -> str:
    return _name_of(file.stat().st_uid)


def _name_of(uid: int) -> str:
    try:
        import pwd  # Unix only

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"
