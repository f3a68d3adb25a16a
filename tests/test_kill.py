"""A worker killed with SIGKILL in the middle of a send, then restarted, sends once.

The worker is the real `antirelou worker` process; Twilio is the fake API over HTTP, told
to stall on the send so that the kill lands while the request is in flight. Twilio has
either already created the message (its answer is what got lost) or not: the restarted
worker must find it in the first case and send it in the second, never both.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from antirelou import migrate
from antirelou.inbound import receive
from antirelou.providers.base import InboundSms
from antirelou.service import Service
from antirelou.settings import load_settings
from tests.fakes.twilio_api import FakeTwilio

ANTIRELOU = Path(sys.executable).parent / "antirelou"
LINE = "+33939000021"
SENDER = "+33612345678"


def write_config(tmp_path: Path, fake: FakeTwilio) -> Path:
    path = tmp_path / "antirelou.toml"
    path.write_text(
        f"""
database_url = "sqlite:///{tmp_path / "antirelou.db"}"
public_url = "https://decoy.example.org"

[[lines]]
number = "{LINE}"
provider = "twilio"

[twilio]
account_sid = "{fake.account_sid}"
auth_token = "{fake.auth_token}"
api_base_url = "{fake.base_url}"
timeout = 2

[evidence]
key_path = "{tmp_path / "evidence.key"}"

[worker]
lease = "4s"
poll_interval = 0.1
backoff = "1s"
""",
        encoding="utf-8",
    )
    return path


def inject_text(config: Path) -> int:
    """A text arrives as a verified Twilio webhook would deliver it; its reply id."""
    service = Service.from_settings(load_settings(config, environ={}))
    try:
        migrate.upgrade(service.engine)
        service.sync_lines()
        sid = "SM" + "ab" * 16
        raw = {"MessageSid": sid, "From": SENDER, "To": LINE, "Body": "salut"}
        sms = InboundSms("twilio", sid, SENDER, LINE, "salut", raw, signature_checked=True)
        receipt = receive(service, sms)
    finally:
        service.dispose()
    assert receipt.reply_id is not None
    return receipt.reply_id


def reply_row(config: Path) -> dict[str, Any]:
    with closing(sqlite3.connect(config.parent / "antirelou.db", timeout=30)) as conn:
        conn.row_factory = sqlite3.Row
        (row,) = conn.execute("SELECT * FROM replies").fetchall()
        return dict(row)


def environment() -> dict[str, str]:
    """Without the test runner's ANTIRELOU_* variables, which would read as configuration."""
    return {name: value for name, value in os.environ.items() if not name.startswith("ANTIRELOU_")}


def wait_for(what: Callable[[], object], timeout: float, why: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout}s waiting for {why}")
        time.sleep(0.05)


class Workers:
    """`antirelou worker` processes started by a test, all killed when it ends."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self.config.parent / f"worker-{len(self.processes) + 1}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [str(ANTIRELOU), "worker", "--config", str(self.config)],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=environment(),
                cwd=self.config.parent,  # any default relative path lands here, not in ./var
            )
        self.processes.append(process)
        return process

    def kill_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=15)


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Iterator[FakeTwilio]:
    with FakeTwilio(hang_seconds=30, hang_creates=request.param) as running:
        yield running


@pytest.mark.slow
@pytest.mark.parametrize(
    "fake",
    [
        pytest.param(True, id="twilio-created-it-answer-lost"),
        pytest.param(False, id="twilio-never-created-it"),
    ],
    indirect=True,
)
def test_worker_killed_mid_send_and_restarted_sends_exactly_once(
    tmp_path: Path, fake: FakeTwilio
) -> None:
    fake.script("hang")
    config = write_config(tmp_path, fake)
    reply_id = inject_text(config)
    workers = Workers(config)
    try:
        first = workers.start()
        wait_for(lambda: fake.requests, timeout=30, why="the first worker's POST")
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=15) == -signal.SIGKILL
        assert reply_row(config)["status"] == "sending"  # it died before recording anything

        workers.start()
        wait_for(lambda: reply_row(config)["status"] == "sent", timeout=30, why="the reply")
    finally:
        workers.kill_all()

    (message,) = fake.messages
    assert message["to"] == SENDER
    reply = reply_row(config)
    assert (reply["id"], reply["provider_message_id"]) == (reply_id, message["sid"])
    if fake.hang_creates:
        assert len(fake.requests) == 1, "the second worker must reconcile, not resend"
    else:
        assert len(fake.requests) == 2, "nothing was created: the second worker must send"
