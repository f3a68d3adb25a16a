"""Private key files kept outside the database: created once, atomically, mode 0600.

Creation writes a private temporary file, then hard-links it into place, so two processes
starting together end up with the same key (the second keeps the first one's file).
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
        os.link(temporary, path)  # fails if another process created it first: keep theirs
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)


def readable_by_others(path: Path) -> bool:
    """Whether the group or other users may read or write the file: a key must be private."""
    return bool(path.stat().st_mode & 0o077)
