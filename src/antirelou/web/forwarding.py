"""A reverse proxy the server does not believe: noticed, logged, and shown to admins.

Behind a reverse proxy, every request reaches the server from the proxy's address. The
server takes the visitor's address from the proxy's X-Forwarded-For only when the proxy is
in `[web] forwarded_allow_ips` (uvicorn applies it before the app sees the request), and
ignores the header silently otherwise. A proxy on another machine or in a container network
is not 127.0.0.1, the default: then every visitor is the proxy. The per-address limits lump
everyone together (one raider's 20 failed logins lock out every browser not trusted yet,
and the public pages' budget is shared by the whole world), and no login is ever from a new
network (web/places.py). Nothing fails loudly, so it would be found during a raid.

This notices it: a request that carries X-Forwarded-For, yet whose client address is none
of the header's addresses, came from a hop the server did not believe (a header believed
would have given the client one of them). The address is logged once an hour and listed on
the dashboard's pages for admins. A client that forges the header straight at an exposed
port shows up too, which is worth knowing as well: the banner says both.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

KEEP = 16  # addresses remembered; a flood of forged headers does not grow the list
LOG_EVERY = 3600.0  # seconds between two log lines about the same address
SHOWN_FOR = 86400.0  # seconds an address stays on the dashboard after its last request


@dataclass
class Sighting:
    address: str
    requests: int
    last: float  # time.monotonic()
    logged: float


class Unbelieved:
    """The addresses that sent X-Forwarded-For without being believed, in this process."""

    def __init__(self) -> None:
        self._seen: dict[str, Sighting] = {}
        self._lock = threading.Lock()  # read from the thread pool, written on the loop

    def note(self, address: str, now: float) -> None:
        with self._lock:
            seen = self._seen.get(address)
            if seen is None:
                if len(self._seen) >= KEEP:
                    return
                seen = self._seen[address] = Sighting(address, 0, now, now - LOG_EVERY)
            seen.requests += 1
            seen.last = now
            due = now - seen.logged >= LOG_EVERY
            if due:
                seen.logged = now
        if due:
            log.warning(
                "requests from %s carry X-Forwarded-For, which is ignored: %s is not in "
                "[web] forwarded_allow_ips. If it is your reverse proxy, add it: until then "
                "every visitor counts as that one address (login and page limits, "
                "new-network alerts). If it is not, someone sends forged headers.",
                address,
                address,
            )

    def recent(self, now: float) -> list[Sighting]:
        with self._lock:
            return [s for s in self._seen.values() if now - s.last < SHOWN_FOR]


def forwarded_for(scope: Scope) -> list[str]:
    """The hosts of the request's X-Forwarded-For headers (ports and brackets taken off,
    as the server does when it believes them); empty without one."""
    values = [value for name, value in scope.get("headers", ()) if name == b"x-forwarded-for"]
    if not values:  # every webhook passes here: no string work without the header
        return []
    text = b",".join(values).decode("latin-1")
    return [_host(part.strip()) for part in text.split(",") if part.strip()]


def _host(entry: str) -> str:
    if entry.startswith("["):  # [2001:db8::1]:443
        return entry[1:].partition("]")[0]
    if entry.count(":") == 1:  # 192.0.2.1:443
        return entry.partition(":")[0]
    return entry


class ForwardingCheck:
    """Pure ASGI middleware: notes requests whose X-Forwarded-For the server ignored."""

    def __init__(self, app: ASGIApp, seen: Unbelieved) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            chain = forwarded_for(scope)
            client = scope.get("client")
            if chain and client and client[0] not in chain:
                self.seen.note(client[0], time.monotonic())
        await self.app(scope, receive, send)
