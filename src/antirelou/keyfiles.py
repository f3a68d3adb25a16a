"""Private key files kept outside the database: created once, atomically, mode 0600.

Creation writes a private temporary file, then hard-links it into place, so two processes
starting together end up with the same key (the second keeps the first one's file).

A command run as root (`sudo antirelou evidence export ...`) would otherwise leave a key file
only root can read, and the service, running as its own user, would then fail to sign or to
check second-factor codes. Run as root, a new key file is given to the owner of the folder
it is made in, as SQLite does with the WAL files it creates beside a database
(give_to_owner_of, also used for the database's lock file).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def create_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` (mode 0600) unless the file exists; an existing one is kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            give_to_owner_of(handle.fileno(), path.parent)
        os.link(temporary, path)  # fails if another process created it first: keep theirs
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)


def give_to_owner_of(fd: int, like: Path) -> None:
    """Run as root, hand the open file `fd` to whoever owns `like` (no-op otherwise)."""
    if os.name != "posix" or os.geteuid() != 0:
        return
    owner = like.stat()
    if (owner.st_uid, owner.st_gid) != (0, 0):
        os.fchown(fd, owner.st_uid, owner.st_gid)


def readable_by_others(path: Path) -> bool:
    """Whether the group or other users may read or write the file: a key must be private."""
    return bool(path.stat().st_mode & 0o077)
