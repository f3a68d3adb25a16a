"""A real HTTP server that gives every request one canned answer and keeps what it received:
for adapter tests that play a fixture's answers over the wire, not through a mocked client.

    with Canned(429, '{"code": 20429}', headers={"Retry-After": "3"}) as server:
        sender = TwilioSender("AC...", "token", api_base_url=server.base_url)

or, for a sender closed with the server, `answering(429, body, make_sender)`.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Protocol, Self, TypeVar


@dataclass(frozen=True)
class Received:
    method: str
    path: str  # with its query
    headers: dict[str, str]
    body: bytes


class Canned:
    def __init__(
        self,
        status: int,
        body: str,
        *,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        close_after_answer: bool = False,
    ) -> None:
        """`tls`: serve https with this context; `close_after_answer`: drop each connection
        once answered, without saying so (as a server whose keep-alive timed out)."""
        self.status = status
        self.body = body.encode()
        self.headers = {"Content-Type": content_type, **(headers or {})}
        self.received: list[Received] = []
        self.connections = 0  # TCP connections accepted
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.close_after_answer = close_after_answer
        scheme = "https" if tls else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        canned = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real APIs

            def setup(self) -> None:
                super().setup()
                canned.connections += 1

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = dict(self.headers.items())
                canned.received.append(Received(self.command, self.path, headers, body))
                self.send_response(canned.status)
                for name, value in canned.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(canned.body)))
                self.end_headers()
                self.wfile.write(canned.body)
                self.close_connection = canned.close_after_answer

            do_GET = do_POST = answer

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet tests

        return Handler

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class _Closing(Protocol):
    def close(self) -> None: ...


SenderT = TypeVar("SenderT", bound=_Closing)


@contextmanager
def answering(
    status: int,
    body: str,
    make: Callable[[str], SenderT],
    seen: list[Received] | None = None,
) -> Iterator[SenderT]:
    """`make(base_url)`'s sender, talking to a Canned server that answers `status` and
    `body`; what the server received is added to `seen` at the end."""
    with Canned(status, body) as server:
        sender = make(server.base_url)
        try:
            yield sender
        finally:
            sender.close()
            if seen is not None:
                seen.extend(server.received)
