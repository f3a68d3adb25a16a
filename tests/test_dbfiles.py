"""A SQLite database this user cannot write is refused at the start of every command, with
what to run, before anything is opened; root creating one is warned that it will be root's.

Files are made unwritable with `chattr +i` (immutable): it binds root too, who runs the
tests here and for whom permission bits mean nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from antirelou import dbfiles
from tests.test_cli import antirelou, config_text, succeeds


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip("this file system or user cannot make a file immutable")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "antirelou.toml"
    path.write_text(config_text(tmp_path / "data" / "antirelou.db"), encoding="utf-8")
    return path


def test_a_database_that_cannot_be_written_stops_the_command_with_what_to_run(
    config: Path, tmp_path: Path
) -> None:
    database = tmp_path / "data" / "antirelou.db"
    succeeds("money", "status", "--config", str(config))  # creates it
    before = database.read_bytes()
    with immutable(database):
        refused = antirelou(
            "sandbox", "send", "--from", "+33612345678", "Salut", "--config", str(config)
        )
    assert refused.returncode == 2
    assert f"{database} is not writable by" in refused.stderr
    assert f"chown USER: {database}*" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert database.read_bytes() == before


def test_the_inbox_beside_it_is_checked_too(tmp_path: Path) -> None:
    database = tmp_path / "antirelou.db"
    inbox = dbfiles.inbox_path(database)
    assert inbox == tmp_path / "antirelou.inbox.db"
    inbox.write_bytes(b"")
    url = f"sqlite:///{database}"
    assert dbfiles.write_problem(url) is None
    with immutable(inbox):
        problem = dbfiles.write_problem(url)
    assert problem is not None
    assert problem.startswith(f"{inbox} is not writable")


def test_a_folder_where_sqlite_cannot_create_its_files_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    with immutable(folder):
        problem = dbfiles.write_problem(f"sqlite:///{folder}/sub/antirelou.db")
    assert problem is not None
    assert f"chown USER: {folder}" in problem


def test_other_databases_are_not_files() -> None:
    assert dbfiles.write_problem("sqlite://") is None
    assert dbfiles.write_problem("sqlite:///:memory:") is None
    assert dbfiles.write_problem("postgresql+psycopg://u@localhost/antirelou") is None


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_root_creating_the_database_is_told_it_will_be_roots(config: Path) -> None:
    first = antirelou("money", "status", "--config", str(config))
    assert first.returncode == 0, first.stderr
    assert "as root: it will be root's" in first.stderr
    again = antirelou("money", "status", "--config", str(config))
    assert "root" not in again.stderr
