"""Key files: private, made once; they and the lock file stay usable by the service even
when a command run as root made them."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from antirelou.db import make_engine, writing
from antirelou.keyfiles import create_private, readable_by_others

NOBODY = 65534
as_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root (to hand files over)"
)


@pytest.fixture
def service_folder() -> Iterator[Path]:
    """A folder of the service's own user (nobody), that nobody can reach from /tmp."""
    folder = Path(tempfile.mkdtemp(prefix="antirelou-var-"))
    os.chown(folder, NOBODY, NOBODY)
    yield folder
    shutil.rmtree(folder)


def test_a_key_is_private_and_made_once(tmp_path: Path) -> None:
    key = tmp_path / "var" / "evidence.key"
    create_private(key, b"first")
    create_private(key, b"second")  # a second process starting at the same time
    assert key.read_bytes() == b"first"
    assert key.stat().st_mode & 0o777 == 0o600
    assert not readable_by_others(key)
    assert [p.name for p in key.parent.iterdir()] == ["evidence.key"]  # no temporary left


@as_root
def test_a_key_made_by_root_belongs_to_the_folder_owner_who_can_read_it(
    service_folder: Path,
) -> None:
    key = service_folder / "totp.key"
    create_private(key, b"secret bytes")
    info = key.stat()
    assert (info.st_uid, info.st_gid) == (NOBODY, NOBODY)
    assert info.st_mode & 0o777 == 0o600
    cat = ["/bin/cat", str(key)]  # the service's user reads it
    done = subprocess.run(cat, user=NOBODY, group=NOBODY, capture_output=True, text=True)
    assert done.stdout == "secret bytes", done.stderr


@as_root
def test_a_key_made_by_root_in_a_folder_of_root_stays_root(tmp_path: Path) -> None:
    key = tmp_path / "evidence.key"
    create_private(key, b"k")
    assert (key.stat().st_uid, key.stat().st_gid) == (0, 0)


@as_root
def test_the_lock_file_a_root_command_makes_belongs_to_the_database_owner(
    service_folder: Path,
) -> None:
    database = service_folder / "antirelou.db"
    sqlite3.connect(database).close()
    os.chown(database, NOBODY, NOBODY)
    engine = make_engine(f"sqlite:///{database}")
    try:
        with writing(engine) as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    finally:
        engine.dispose()
    turn = service_folder / "antirelou.db-turn"
    assert (turn.stat().st_uid, turn.stat().st_gid) == (NOBODY, NOBODY)
    assert turn.stat().st_mode & 0o777 == 0o600
