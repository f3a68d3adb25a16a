"""db.write_turn on a SQLite file: processes take turns to write.

Real processes (another Python interpreter holding the turn on the same database file),
since what is checked is the file lock the kernel keeps between them.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from antirelou.db import make_engine, write_turn

HOLDER = """
import sys
from antirelou.db import make_engine, write_turn
with write_turn(make_engine(sys.argv[1])):
    print("holding", flush=True)
    sys.stdin.readline()  # hold until told to let go
"""


def holder(url: str) -> subprocess.Popen[str]:
    """Another process that takes the turn, says "holding", and lets go at a line on stdin."""
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'antirelou.db'}"


def test_a_process_waits_while_another_has_the_turn(url: str) -> None:
    with holder(url) as other:
        assert other.stdout is not None
        assert other.stdin is not None
        assert other.stdout.readline() == "holding\n"
        taken = threading.Event()

        def take() -> None:
            with write_turn(make_engine(url)):
                taken.set()

        waiting = threading.Thread(target=take)
        waiting.start()
        assert not taken.wait(0.5), "took the turn while another process held it"
        other.stdin.write("go\n")
        other.stdin.flush()
        assert taken.wait(20), "the turn never came"
        waiting.join()


def test_the_turn_is_reentrant_and_let_go_by_the_outermost_exit(url: str) -> None:
    turn = write_turn(make_engine(url))
    with turn, turn:
        pass
    with holder(url) as other:
        assert other.stdout is not None
        assert other.stdin is not None
        assert other.stdout.readline() == "holding\n"  # we let the file lock go
        other.stdin.write("go\n")


def test_a_database_in_memory_has_no_turn_file(tmp_path: Path) -> None:
    engine = make_engine("sqlite://")
    with write_turn(engine), write_turn(engine):
        pass
    assert list(tmp_path.iterdir()) == []
