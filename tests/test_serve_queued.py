"""`antirelou serve` with `[web] intake = "queued"`: the web app parks texts, a worker in a
child process decides and answers them, and is restarted if it dies.

A real subprocess on a free port with a temporary SQLite configuration; signed Twilio
webhooks over real HTTP; replies go out through a fake Twilio API; SIGTERM stops it all.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.twilio_api import FakeTwilio
from tests.test_cli import wait_for
from tests.test_serve_workers import (
    ACCOUNT_SID,
    SENDERS,
    SMS_PATH,
    TOKEN,
    signed_text,
    start_serve,
    statuses,
    write_config,
)

LATE_SENDER = "+33745678901"  # a fourth block of 100 numbers


def child_pids(log: Path) -> list[int]:
    """The worker processes `serve` started, from its JSON log."""
    pids = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            message = json.loads(line)["message"]
            if message.startswith("worker started in its own process"):
                pids.append(int(message.rsplit(" ", 1)[1].strip(")")))
    return pids


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(ACCOUNT_SID, TOKEN) as running:
        yield running


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_queued_texts_are_answered_by_a_child_worker_that_comes_back_after_a_kill(
    tmp_path: Path, fake: FakeTwilio
) -> None:
    config = write_config(tmp_path, fake.base_url)
    config.write_text(config.read_text() + '\n[web]\nintake = "queued"\n', encoding="utf-8")
    log = tmp_path / "serve.log"
    process, base = start_serve(config, log)
    database = tmp_path / "antirelou.db"
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            for n, sender in enumerate([*SENDERS, SENDERS[0]], start=1):
                body, headers = signed_text(n, sender)
                assert client.post(SMS_PATH, content=body, headers=headers).status_code == 200
            wait_for(lambda: statuses(database) == ["sent"] * 3, timeout=20, why="3 replies")
            wait_for(lambda: child_pids(log), timeout=5, why="the worker's pid")
            (first,) = child_pids(log)
            assert first != process.pid

            os.kill(first, signal.SIGKILL)
            body, headers = signed_text(9, LATE_SENDER)
            assert client.post(SMS_PATH, content=body, headers=headers).status_code == 200, (
                "the web app parks texts while the worker is down"
            )
            wait_for(lambda: len(child_pids(log)) == 2, timeout=20, why="a new worker")
            wait_for(lambda: statuses(database) == ["sent"] * 4, timeout=20, why="4th reply")
        assert sorted(str(m["to"]) for m in fake.messages) == sorted([*SENDERS, LATE_SENDER])

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=15)
    second = child_pids(log)[-1]
    assert gone(second), "serve stops its worker"
    output = log.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in output
    assert (tmp_path / "antirelou.inbox.db").exists()
