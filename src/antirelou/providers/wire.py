"""A lean HTTP/1.1 client for the reply path: the standard library's http.client with kept-
alive connections, and every failure sorted by whether the request can have left.

Why not httpx, which the rest of the project uses: during a flood the worker makes hundreds of
small form POSTs a second on the same two cores as the webhooks, and httpx's layers cost most
of that work. Measured on the project's 2-core machine (eight sending threads against a local
fake API, CPU of the client process per request): httpx 0.85 ms, this 0.20 ms
(benchmarks/http_clients.py, docs/load.md). What the reply path needs is small: one origin,
Basic auth, a form, a JSON body or a query, a JSON answer, TLS verified against certifi's
roots (as httpx does), HTTPS_PROXY and NO_PROXY.

The sorting is what keeps sending at-most-once: `NotSent` only when the failure came before a
byte of the request could leave (connecting, the TLS handshake, the proxy's tunnel); anything
later is `AnswerLost`, and the caller must assume the provider may have acted on it.
"""

from __future__ import annotations

import base64
import http.client
import json
import select
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message

import certifi

MAX_BODY = 1 << 20  # a provider's answer is a few hundred bytes; anything past this is not one
KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept (httpx's default too)
MAX_IDLE = 16  # idle connections kept; more than the worker's sending threads
USER_AGENT = "antirelou"


class NotSent(Exception):
    """The request failed before a byte of it left: the server never saw it."""


class AnswerLost(Exception):
    """The request failed once it had left, or may have: the server may have acted on it."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Message  # case-insensitive .get()
    body: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> object:
        """The body's JSON value, or None when it is no JSON (a proxy's error page)."""
        try:
            return json.loads(self.body)
        except ValueError:  # UnicodeDecodeError is one
            return None

    def json_object(self) -> dict[str, object]:
        """The body's JSON object, or {} when the server (or a proxy) answered otherwise."""
        payload = self.json()
        return payload if isinstance(payload, dict) else {}


@dataclass(frozen=True)
class _Origin:
    https: bool
    host: str
    port: int
    prefix: str  # the base URL's path, without its trailing slash

    @classmethod
    def parse(cls, base_url: str) -> _Origin:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        return cls(https, parts.hostname, port, parts.path.rstrip("/"))


@dataclass(frozen=True)
class _Proxy:
    host: str
    port: int
    authorization: str | None  # a Proxy-Authorization header's value

    @classmethod
    def for_origin(cls, origin: _Origin) -> _Proxy | None:
        """The proxy the environment names for this origin (HTTPS_PROXY, HTTP_PROXY,
        NO_PROXY, as httpx read them), or None."""
        if urllib.request.proxy_bypass(origin.host):
            return None
        url = urllib.request.getproxies().get("https" if origin.https else "http")
        if not url:
            return None
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            # (the URL may carry a password: not quoted)
            raise ValueError(f"the proxy the environment sets for {origin.host} is not http://")
        authorization = None
        if parts.username:
            credentials = f"{urllib.parse.unquote(parts.username)}:"
            credentials += urllib.parse.unquote(parts.password or "")
            authorization = _basic(credentials)
        return cls(parts.hostname, parts.port or 80, authorization)


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode("ascii")


class Wire:
    """Requests to one origin over a small pool of kept-alive connections; thread-safe.

    `headers` are sent with every request (secrets in them are the caller's to scrub from
    error texts; this class never puts a header into a message).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._origin = _Origin.parse(base_url)
        self._proxy = _Proxy.for_origin(self._origin)
        self._timeout = timeout
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if basic_auth is not None:
            self._headers["Authorization"] = _basic(":".join(basic_auth))
        self._ssl = ssl_context
        if self._origin.https and self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=certifi.where())
        self._idle: list[tuple[float, http.client.HTTPConnection]] = []
        self._lock = threading.Lock()

    def post_form(self, path: str, form: Mapping[str, str]) -> Answer:
        body = urllib.parse.urlencode(form).encode("ascii")
        content = {"Content-Type": "application/x-www-form-urlencoded"}
        return self.request("POST", path, body, content)

    def post_json(self, path: str, payload: object) -> Answer:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        return self.request("POST", path, body, {"Content-Type": "application/json"})

    def get(self, path: str, query: Mapping[str, str] | None = None) -> Answer:
        return self.request("GET", f"{path}?{urllib.parse.urlencode(query)}" if query else path)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """One request; raises NotSent or AnswerLost (see the module's docstring)."""
        connection = self._checkout()
        try:
            connection.request(
                method, self._origin.prefix + path, body, {**self._headers, **(headers or {})}
            )
            response = connection.getresponse()
            data = response.read(MAX_BODY + 1)
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise AnswerLost(f"{type(exc).__name__}: {exc}") from exc
        if len(data) > MAX_BODY:
            connection.close()
            raise AnswerLost(f"an answer of more than {MAX_BODY} bytes")
        self._checkin(connection, response)
        return Answer(response.status, response.headers, data)

    def close(self) -> None:
        """Close the idle connections (one in use is closed when its request ends)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for _since, connection in idle:
            connection.close()

    # --- the pool -------------------------------------------------------------------------

    def _checkout(self) -> http.client.HTTPConnection:
        """An idle connection still open, else a new one, connected (or NotSent)."""
        while True:
            with self._lock:
                since, connection = self._idle.pop() if self._idle else (0.0, None)
            if connection is None:
                return self._connect()
            if time.monotonic() - since < KEEPALIVE_EXPIRY and _still_open(connection):
                return connection
            connection.close()

    def _checkin(
        self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse
    ) -> None:
        if response.will_close or not response.isclosed():
            connection.close()
            return
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append((time.monotonic(), connection))
                return
        connection.close()

    def _connect(self) -> http.client.HTTPConnection:
        origin, proxy = self._origin, self._proxy
        host, port = (proxy.host, proxy.port) if proxy else (origin.host, origin.port)
        connection: http.client.HTTPConnection
        if origin.https:
            connection = http.client.HTTPSConnection(
                host, port, timeout=self._timeout, context=self._ssl
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self._timeout)
        if proxy:
            # A tunnel for plain http too: one way through every proxy, and the request
            # line stays what the origin expects.
            tunnel = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else {}
            connection.set_tunnel(origin.host, origin.port, headers=tunnel)
        try:
            connection.connect()  # TCP, the proxy's tunnel, TLS: nothing of the request yet
        except OSError as exc:  # refused, unreachable, timed out, certificate refused
            connection.close()
            raise NotSent(f"{type(exc).__name__}: {exc}") from exc
        return connection


def _still_open(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle connection may be used again: readable means the server closed it
    (or sent what no request asked for), and writing to it would be a request lost."""
    sock = connection.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable
