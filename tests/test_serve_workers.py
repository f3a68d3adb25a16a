"""`antirelou serve`: its worker in a process of its own, and `--workers 2`: two web processes.

A real subprocess on a free port with a temporary SQLite configuration; signed Twilio
webhooks over real HTTP; the reply goes out through a fake Twilio API; SIGTERM stops it all.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from antirelou.providers.twilio import compute_signature
from tests.fakes.twilio_api import FakeTwilio
from tests.test_cli import ANTIRELOU, environment, free_port, healthy, wait_for

LINE = "+33939000021"
SENDERS = ("+33612345678", "+33698765432", "+33755512345")  # three blocks of 100
ACCOUNT_SID = "AC" + "0" * 32
TOKEN = "workers-token"
PUBLIC_URL = "https://decoy.example.org"
SMS_PATH = "/webhooks/twilio/sms"


def write_config(tmp_path: Path, api_base_url: str) -> Path:
    path = tmp_path / "antirelou.toml"
    path.write_text(
        f"""
database_url = "sqlite:///{tmp_path / "antirelou.db"}"
public_url = "{PUBLIC_URL}"

[[lines]]
number = "{LINE}"
provider = "twilio"

[twilio]
account_sid = "{ACCOUNT_SID}"
auth_token = "{TOKEN}"
api_base_url = "{api_base_url}"
timeout = 5

[worker]
poll_interval = 0.1

[evidence]
key_path = "{tmp_path / "evidence.key"}"
""",
        encoding="utf-8",
    )
    return path


def signed_text(n: int, sender: str) -> tuple[str, dict[str, str]]:
    sid = f"SM{n:032x}"
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "To": LINE,
        "Body": f"salut {n}",  # distinct: three senders with one text is a copy-paste raid
        "NumMedia": "0",
    }
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": compute_signature(PUBLIC_URL + SMS_PATH, params, TOKEN),
    }
    return urlencode(params), headers


def statuses(database: Path) -> list[str]:
    with closing(sqlite3.connect(database, timeout=30)) as conn:
        return [row[0] for row in conn.execute("SELECT status FROM replies ORDER BY id")]


def start_serve(config: Path, log: Path, *options: str) -> tuple[subprocess.Popen[bytes], str]:
    """`antirelou serve` on a free port, logging JSON lines to `log`, once /healthz answers;
    the process and its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [str(ANTIRELOU), "--log-format", "json", "serve", "--config", str(config)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port), *options],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment(),
        )
    try:
        wait_for(lambda: healthy(process, port, log), timeout=30, why="/healthz")
    except BaseException:
        process.kill()
        process.wait(timeout=15)
        raise
    return process, base


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(ACCOUNT_SID, TOKEN) as running:
        yield running


@pytest.mark.slow
def test_two_web_processes_answer_and_the_parent_worker_replies_once(
    tmp_path: Path, fake: FakeTwilio
) -> None:
    config = write_config(tmp_path, fake.base_url)
    log = tmp_path / "serve.log"
    process, base = start_serve(config, log, "--workers", "2")
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/readyz").status_code == 200
            for n, sender in enumerate([*SENDERS, SENDERS[0]], start=1):
                body, headers = signed_text(n, sender)
                response = client.post(SMS_PATH, content=body, headers=headers)
                assert response.status_code == 200, response.text
            forged = client.post(
                SMS_PATH, content=body, headers={**headers, "X-Twilio-Signature": "x"}
            )
            assert forged.status_code == 403
            database = tmp_path / "antirelou.db"
            wait_for(
                lambda: statuses(database) == ["sent"] * 3, timeout=20, why="three replies sent"
            )
            assert len(fake.messages) == 3  # one per sender, the repeat got none

            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(client.get("/metrics").text)
                for s in family.samples
            }
        inbound = ("antirelou_inbound_texts_total", (("line", LINE), ("provider", "twilio")))
        assert samples[inbound] == 4
        # Measured by the worker in the parent, exported by a web process.
        sends = (
            "antirelou_provider_request_seconds_count",
            (("operation", "send"), ("provider", "twilio")),
        )
        assert samples[sends] == 3

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=15)
    output = log.read_text(encoding="utf-8", errors="replace")
    assert "2 web processes" in output
    assert "PostgreSQL" in output  # the SQLite warning
    assert "Traceback" not in output
    for sender in SENDERS:
        assert sender not in output
    for line in output.splitlines():
        if line.startswith("{"):
            assert {"time", "level", "logger", "message"} <= set(json.loads(line))


def child_worker_pid(log: Path) -> int:
    """The pid `serve` logged when it started its worker process (childworker.py)."""
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{") and "own process (pid" in (message := json.loads(line)["message"]):
            return int(message.rsplit("pid ", 1)[1].rstrip(")"))
    raise AssertionError(f"no worker process in the log:\n{log.read_text()}")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"  # a zombie is gone
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_the_worker_process_is_woken_by_each_reply_and_dies_with_serve(
    tmp_path: Path, fake: FakeTwilio
) -> None:
    """One web process, the worker in a child: a webhook's reply goes at once, though the
    worker would look again only in a minute; the child's sends are in /metrics; and a
    `serve` killed outright leaves no worker behind."""
    config = write_config(tmp_path, fake.base_url)
    worker = "poll_interval = 60\nown_process = true"
    config.write_text(config.read_text().replace("poll_interval = 0.1", worker))
    log = tmp_path / "serve.log"
    process, base = start_serve(config, log)
    try:
        wait_for(lambda: "own process (pid" in log.read_text(), timeout=20, why="the worker")
        child = child_worker_pid(log)
        database = tmp_path / "antirelou.db"
        with httpx.Client(base_url=base, timeout=10) as client:
            for n, sender in enumerate(SENDERS, start=1):
                body, headers = signed_text(n, sender)
                assert client.post(SMS_PATH, content=body, headers=headers).status_code == 200
                # Well before the next poll: the web app woke the worker.
                wait_for(lambda n=n: statuses(database) == ["sent"] * n, timeout=20, why="sent")
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(client.get("/metrics").text)
                for s in family.samples
            }
        sends = (
            "antirelou_provider_request_seconds_count",
            (("operation", "send"), ("provider", "twilio")),
        )
        assert samples[sends] == 3  # measured in the worker process, exported by the web's
        assert len(fake.messages) == 3

        process.kill()  # no SIGTERM, no clean-up: the pipe to the worker closes all the same
        process.wait(timeout=15)
        wait_for(lambda: not alive(child), timeout=30, why="the orphan worker to stop")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=15)
    assert "Traceback" not in log.read_text(encoding="utf-8", errors="replace")
