"""`serve`'s worker in a process of its own: queued intake, or `[worker] own_process`.

With queued intake (inbox.py) the worker takes the decisions; in the web process they
would share one interpreter lock with the web app and gain nothing. So `serve` runs
`antirelou worker`, with the same configuration and log format, as a child: the decisions
get the machine's other core, with one command still. `[worker] own_process` (the default)
does the same with inline intake: the web app decides, the child sends, each on a core (on
2 cores, about 500 texts/s against 410 with the worker as a thread, docs/load.md), and a
worker that crashes or leaks memory leaves the web app up. The child is
restarted if it dies (what it was doing is safe: parked texts wait, leases expire), and on
shutdown it gets SIGTERM, so it finishes its round, like a worker run by hand. It runs in a
session of its own, so that a Ctrl-C reaches `serve` alone, which then stops it that way.

The web app nudges it (wake) when a reply is queued or a text parked, with a byte down a
pipe to the child's standard input, so that the work is done now and not at the next poll.
The end of that pipe (serve killed) stops the child too: no orphan worker is left behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)

RESTART_AFTER = 1.0  # seconds before a dead worker is started again


def worker_command(config_path: Path | None, log_format: str, verbose: bool) -> list[str]:
    """`antirelou worker` as this interpreter runs it, with the same options."""
    command = [sys.executable, "-m", "antirelou", "--log-format", log_format]
    if verbose:
        command.append("--verbose")
    command += ["worker", "--wake-on-stdin"]
    if config_path is not None:
        command += ["--config", str(config_path.resolve())]
    return command


class ChildWorker:
    """A worker process kept running until `stop`."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._watch, name="worker-watch", daemon=True)

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._process.pid if self._process else None

    def wake(self) -> None:
        """A reply was queued: one byte down the child's stdin. Never blocks: when the pipe
        is full, nudges are pending anyway; when the child is gone, it is restarting."""
        process = self._process
        if process is None or process.stdin is None:
            return
        # BlockingIOError (full), BrokenPipeError (exited), or closed (restarting)
        with contextlib.suppress(OSError):
            os.write(process.stdin.fileno(), b"!")

    def start(self) -> None:
        self._spawn()
        self._watcher.start()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, so the worker finishes its round; SIGKILL if it has not after `timeout`."""
        with self._lock:  # after this, _spawn starts nothing more
            self._stopping.set()
            process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("the worker did not stop within %.0f s: killed", timeout)
            process.kill()
            process.wait()
        self._close_pipe()

    def _close_pipe(self) -> None:
        process = self._process
        if process is not None and process.stdin is not None:
            process.stdin.close()

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            self._close_pipe()
            process = subprocess.Popen(  # noqa: S603 - our own command
                self.command, stdin=subprocess.PIPE, start_new_session=True
            )
            assert process.stdin is not None
            os.set_blocking(process.stdin.fileno(), False)
            self._process = process
            log.info("worker started in its own process (pid %d)", self._process.pid)

    def _watch(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                process = self._process
            assert process is not None
            code = process.wait()
            if self._stopping.is_set():
                return
            log.error("the worker process exited (status %s); restarting it", code)
            if self._stopping.wait(RESTART_AFTER):
                return
            self._spawn()
