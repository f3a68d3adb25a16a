"""The real `antirelou` console script, run as subprocesses against a SQLite file.

Nothing is imported from the CLI module: these tests see what an operator sees (exit
codes, stdout, stderr) and, for `serve`, a real server and its worker on a real port.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from antirelou import migrate
from antirelou.encoding import segment

ANTIRELOU = Path(sys.executable).parent / "antirelou"
SENDER = "+33612345678"
# A reply typed in a word processor: ’ and « » force UCS-2 and double the bill.
TYPOGRAPHIC_REPLY = "Ce numéro n’est pas le sien. Elle vous a dit « non » : c’est non. Merci."
GSM7_REWRITE = "Ce numéro n'est pas le sien. Elle vous a dit \"non\" : c'est non. Merci."


def config_text(database: Path, reply: str = TYPOGRAPHIC_REPLY, extra: str = "") -> str:
    return f"""
database_url = "sqlite:///{database}"
public_url = "http://127.0.0.1:8000"

[[lines]]
number = "+33939000021"
provider = "sandbox"
reply = "{reply}"

[worker]
poll_interval = 0.1

[evidence]
key_path = "{database.parent / "evidence.key"}"
{extra}
"""


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "antirelou.db"


@pytest.fixture
def config(tmp_path: Path, database: Path) -> Path:
    path = tmp_path / "antirelou.toml"
    path.write_text(config_text(database), encoding="utf-8")
    return path


def environment() -> dict[str, str]:
    """This process's environment without ANTIRELOU_* variables (the test runner's own,
    such as TEST_POSTGRES_URL, would be read as configuration overrides)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("ANTIRELOU_")}


def antirelou(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ANTIRELOU), *args],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=60,
        check=False,
    )


def succeeds(*args: str) -> str:
    """Run the command, check it worked, return its standard output."""
    result = antirelou(*args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def reply_statuses(database: Path) -> list[str]:
    with closing(sqlite3.connect(database, timeout=30)) as conn:
        return [row[0] for row in conn.execute("SELECT status FROM replies ORDER BY id")]


def wait_for(what: Callable[[], object], timeout: float, why: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout}s waiting for {why}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- one-shot commands ------------------------------------------------------------------


def test_console_script_is_installed() -> None:
    assert ANTIRELOU.is_file()
    assert "sandbox" in succeeds("--help")


def test_db_upgrade_prints_the_revision(config: Path, database: Path) -> None:
    out = succeeds("db", "upgrade", "--config", str(config))
    assert out.strip() == f"database at revision {migrate.head_revision()}"
    assert database.is_file()
    assert succeeds("db", "upgrade", "--config", str(config)) == out  # again: a no-op


def test_sandbox_send_replies_once_then_respects_stop(config: Path, database: Path) -> None:
    send = ("sandbox", "send", "--config", str(config), "--from", SENDER)

    first = succeeds(*send, "salut")
    assert "reply (first_text_in_window)" in first
    assert "queued" in first
    second = succeeds(*send, "tu réponds ?")
    assert "already_replied_in_window" in second
    assert "queued" not in second
    stop = succeeds(*send, "STOP")
    assert "opt_out_keyword" in stop

    assert reply_statuses(database) == ["queued"]


def test_mistyped_arguments_are_usage_errors_not_tracebacks(config: Path) -> None:
    """What an operator under stress may type: each is refused with a message."""
    succeeds("db", "upgrade", "--config", str(config))
    mistakes = [
        ("incidents", "close", "999999999999999999999999"),  # past a 64-bit row id
        ("money", "donate", "nan"),
        ("money", "donate", "1e400"),
        ("lines", "pause", "+33600000000"),  # not one of our lines
        ("evidence", "export", "--incident", "0", "--out", "x.zip"),
        ("replay", "/dev/null", "--out", "replayed", "--drain", "an hour"),
        ("replay", "/dev/null", "--out", "replayed", "--drain", "99999999999999999d"),
    ]
    for args in mistakes:
        result = antirelou(args[0], args[1], "--config", str(config), *args[2:])
        assert result.returncode in (1, 2), (args, result.stdout)
        assert "Traceback" not in result.stderr, args
        assert result.stderr.strip(), args  # says why


def test_lines_check_shows_ucs2_segments_and_a_gsm7_rewrite(config: Path) -> None:
    typographic = segment(TYPOGRAPHIC_REPLY)
    rewritten = segment(GSM7_REWRITE)
    assert (typographic.segments, rewritten.segments) == (2, 1)  # the point of the advice

    out = succeeds("lines", "check", "--config", str(config))

    assert "+33939000021" in out
    assert "UCS-2" in out
    assert f"{typographic.units} units, 2 segment(s)" in out
    assert "GSM-7 rewrite (1 segment(s)" in out
    assert GSM7_REWRITE in out.splitlines()[-1]


def test_lines_check_has_no_advice_for_a_gsm7_reply(tmp_path: Path, database: Path) -> None:
    path = tmp_path / "plain.toml"
    path.write_text(config_text(database, reply="Merci de ne pas insister."), encoding="utf-8")
    out = succeeds("lines", "check", "--config", str(path))
    assert "GSM-7, 25 units, 1 segment(s)" in out
    assert "rewrite" not in out


@pytest.mark.parametrize(
    "command",
    [("lines", "check"), ("db", "upgrade"), ("sandbox", "send", "--from", SENDER, "salut")],
)
def test_invalid_config_exits_2_and_names_the_problem(
    tmp_path: Path, database: Path, command: tuple[str, ...]
) -> None:
    path = tmp_path / "bad.toml"
    bad = config_text(database).replace('provider = "sandbox"', 'timezone = "Mars/Base"')
    path.write_text(bad, encoding="utf-8")

    result = antirelou(*command, "--config", str(path))

    assert result.returncode == 2
    assert "unknown timezone 'Mars/Base'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not database.exists(), "nothing may be written with an invalid configuration"


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = antirelou("lines", "check", "--config", str(tmp_path / "absent.toml"))
    assert result.returncode == 2
    assert "configuration file not found" in result.stderr
    assert "Traceback" not in result.stderr


# --- the long-running server ------------------------------------------------------------


@pytest.fixture
def serve(tmp_path: Path, config: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`antirelou serve` on a free port; killed at the end if the test did not stop it."""
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [str(ANTIRELOU), "serve", "--config", str(config), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment(),
        )
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=15)


def healthy(process: subprocess.Popen[bytes], port: int, log: Path) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"serve exited before answering:\n{log.read_text()}")
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.slow
def test_serve_answers_health_and_its_worker_sends_a_sandbox_reply(
    tmp_path: Path, config: Path, database: Path, serve: tuple[subprocess.Popen[bytes], int]
) -> None:
    process, port = serve
    log = tmp_path / "serve.log"
    wait_for(lambda: healthy(process, port, log), timeout=20, why="/healthz")
    assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200

    out = succeeds("sandbox", "send", "--config", str(config), "--from", SENDER, "salut")
    assert "queued" in out
    wait_for(lambda: reply_statuses(database) == ["sent"], timeout=10, why="the reply to go")

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    output = log.read_text(encoding="utf-8", errors="replace")
    assert f"antirelou listening on http://127.0.0.1:{port}" in output
    assert "Traceback" not in output


@pytest.mark.slow
def test_an_idle_worker_stops_at_once_on_sigterm(tmp_path: Path, config: Path) -> None:
    """SIGTERM ends the round and the worker: not a minute later, at its next poll."""
    succeeds("sandbox", "send", "--config", str(config), "--from", SENDER, "salut")
    env = {**environment(), "ANTIRELOU_WORKER__POLL_INTERVAL": "60"}
    with (tmp_path / "worker.log").open("wb") as log:
        process = subprocess.Popen(
            [str(ANTIRELOU), "worker", "--config", str(config)], stdout=log, stderr=log, env=env
        )
    try:
        database = tmp_path / "antirelou.db"
        wait_for(lambda: reply_statuses(database) == ["sent"], timeout=20, why="a first round")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=15)


def test_a_worker_started_before_its_database_answers_waits_for_it(
    tmp_path: Path, config: Path, database: Path
) -> None:
    """At boot, or while PostgreSQL restarts, the database may not answer yet: the worker
    says so and waits (`database_wait`) instead of dying. Here the SQLite path is a
    directory at first, which SQLite cannot open."""
    database.mkdir()
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(ANTIRELOU), "worker", "--config", str(config)],
            stdout=log,
            stderr=log,
            env=environment(),
        )
    try:
        wait_for(lambda: b"does not answer" in log_path.read_bytes(), 20, "the worker to wait")
        assert process.poll() is None, log_path.read_text()
        database.rmdir()
        wait_for(lambda: revision(database) == migrate.head_revision(), 20, "the worker to migrate")
        succeeds("sandbox", "send", "--config", str(config), "--from", SENDER, "salut")
        wait_for(lambda: reply_statuses(database) == ["sent"], 20, "the worker to reply")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert b"Traceback" not in log_path.read_bytes()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=15)


def test_a_database_that_never_answers_ends_the_worker_with_a_clear_message(
    tmp_path: Path,
) -> None:
    config = tmp_path / "antirelou.toml"
    url = f"postgresql+psycopg://antirelou@127.0.0.1:{free_port()}/antirelou"
    config.write_text(f'database_url = "{url}"\ndatabase_wait = "2s"\n', encoding="utf-8")
    result = antirelou("worker", "--config", str(config))
    assert result.returncode == 2
    assert "the database does not answer" in result.stderr
    assert "still does not answer after 2 s" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [("worker",), ("serve", "--port", "0")])
def test_a_proxy_the_provider_client_cannot_use_stops_the_start(
    tmp_path: Path, database: Path, command: tuple[str, ...]
) -> None:
    config = tmp_path / "antirelou.toml"
    vonage = '[vonage]\napi_key = "k1"\napi_secret = "s3cr3t-value"\n'
    vonage += 'signature_secret = "sig-value"\n'
    text = config_text(database, extra=vonage).replace('"sandbox"', '"vonage"')
    config.write_text(text, encoding="utf-8")
    env = environment() | {"HTTPS_PROXY": "socks5://me:hunter2@127.0.0.1:1080"}
    result = subprocess.run(
        [str(ANTIRELOU), *command, "--config", str(config)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "the proxy the environment sets for rest.nexmo.com is not http://" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def revision(database: Path) -> str | None:
    """The schema revision of the SQLite file, None while there is none."""
    if not database.is_file():
        return None
    with closing(sqlite3.connect(database, timeout=30)) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:  # no such table yet
            return None
    return None if row is None else str(row[0])
