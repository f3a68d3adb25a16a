"""The machinery every fake provider API shares: uvicorn in a thread, scripted behaviours,
and a record of every request.

A fake runs on 127.0.0.1 over real HTTP so that the adapters' httpx clients, their timeouts
and their connection handling are exercised, not a mocked transport. Subclasses give their
routes (`routes`) and the behaviours their requests may be scripted with (`Script`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute


@dataclass(frozen=True)
class Call:
    """One request as the fake saw it, authorised or not."""

    method: str
    path: str
    authorized: bool
    form: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    json: Any = None


class Script:
    """How the next requests of one kind are answered, one behaviour each; then "ok"."""

    def __init__(self, lock: threading.Lock, known: Iterable[str]) -> None:
        self._lock = lock
        self.known = frozenset(known) | {"ok"}
        self._queue: deque[str] = deque()

    def extend(self, behaviours: Sequence[str]) -> None:
        unknown = set(behaviours) - self.known
        if unknown:
            raise ValueError(f"unknown behaviours {sorted(unknown)}; known: {sorted(self.known)}")
        with self._lock:
            self._queue.extend(behaviours)

    def next(self) -> str:
        with self._lock:
            return self._queue.popleft() if self._queue else "ok"


def basic_auth_matches(header: str | None, user: str, password: str) -> bool:
    """Whether an Authorization header carries exactly these Basic credentials."""
    if header is None or not header.startswith("Basic "):
        return False
    try:
        decoded = base64.b64decode(header.removeprefix("Basic "), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(decoded, f"{user}:{password}".encode())


class FakeServer:
    """A context manager serving `routes()` on a free port; see the module docstring.

    `hang_seconds` is how long a "hang" behaviour stalls before answering (longer than the
    client's timeout in the tests); `stop` cuts stalls short so that it is quick.
    """

    label = "fake"

    def __init__(self, *, hang_seconds: float = 2.0) -> None:
        self.hang_seconds = hang_seconds
        self.base_url = ""
        self.lock = threading.Lock()
        self._stopping = threading.Event()
        self._calls: list[Call] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def script_for(self, known: Iterable[str]) -> Script:
        return Script(self.lock, known)

    # --- what tests read ------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every request received, refused ones included (a snapshot)."""
        with self.lock:
            return list(self._calls)

    def record(self, call: Call) -> None:
        with self.lock:
            self._calls.append(call)

    async def stall(self) -> None:
        """Wait `hang_seconds`, or less if the server is stopping."""
        deadline = time.monotonic() + self.hang_seconds
        while time.monotonic() < deadline and not self._stopping.is_set():
            await asyncio.sleep(0.02)

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Serve on a free port and return once uvicorn accepts connections."""
        self._stopping.clear()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            Starlette(routes=self.routes()),
            host="127.0.0.1",
            port=port,
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=math.ceil(self.hang_seconds) + 1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=self.label, daemon=True
        )
        self._thread.start()
        self._wait_started(sock)
        self.base_url = f"http://127.0.0.1:{port}"

    def _wait_started(self, sock: socket.socket) -> None:
        assert self._server is not None
        assert self._thread is not None
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                self.stop()
                raise RuntimeError(f"the {self.label} server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving; stalled answers are cut short so that this is quick."""
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=self.hang_seconds + 10)
            if self._thread.is_alive():
                raise RuntimeError(f"the {self.label} server did not stop")
        self._server = None
        self._thread = None
