"""What the webhook benchmarks share: a Twilio inbound form as Twilio posts it, a fake
Twilio Messages API, ports, per-process CPU time, percentiles. Imported by
benchmarks/load.py, webhook.py and sends.py (run as scripts, so this folder is on the
path)."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

LINE = "+33939000021"
ACCOUNT_SID = "AC" + "0" * 32
MESSAGES_PATH = "/2010-04-01/Accounts/{account_sid}/Messages.json"


def inbound_form(sid: str, sender: str, text_body: str) -> list[tuple[str, str]]:
    """The parameters Twilio posts for an inbound SMS, in its usual order."""
    return [
        ("ToCountry", "FR"),
        ("ToState", ""),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("ToCity", ""),
        ("FromZip", ""),
        ("SmsSid", sid),
        ("FromState", ""),
        ("SmsStatus", "received"),
        ("FromCity", ""),
        ("Body", text_body),
        ("FromCountry", "FR"),
        ("To", LINE),
        ("ToZip", ""),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", sender),
        ("ApiVersion", "2010-04-01"),
    ]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc (0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_up(base: str, timeout: float = 20.0) -> None:
    """Return once `base`/healthz answers (a fake started in another process)."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def serve_fake_twilio(
    port: int, latency: float = 0.0, slow_every: int = 0, slow_latency: float = 0.0
) -> None:
    """A minimal Twilio Messages API, for the worker's sends: 201 with a fresh sid for every
    POST, after `latency` seconds (a real API takes a few hundred milliseconds); with
    `slow_every` N, every Nth POST takes `slow_latency` seconds instead (an API that hangs
    now and then)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    posts = [0]

    async def messages(request: Request) -> Response:
        if request.method == "GET":  # reconciliation lookups: nothing was sent twice
            return JSONResponse({"messages": []})
        form = await request.form()
        posts[0] += 1
        slow = slow_every and posts[0] % slow_every == 0
        if slow or latency:
            await asyncio.sleep(slow_latency if slow else latency)
        return JSONResponse(
            {
                "sid": "SM" + secrets.token_hex(16),
                "account_sid": request.path_params["account_sid"],
                "to": form.get("To"),
                "from": form.get("From"),
                "body": form.get("Body"),
                "status": "queued",
                "price": None,
                "price_unit": "EUR",
            },
            status_code=201,
        )

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            Route(MESSAGES_PATH, messages, methods=["GET", "POST"]),
            Route("/healthz", healthz),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def scenario_arguments(doc: str | None, postgres: bool = False) -> argparse.Namespace:
    """--scenario (raid2017 by default) and --seed, for the benchmarks that replay one;
    `postgres`: also --postgres URL, a server to run on instead of SQLite."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument("--scenario", default="raid2017")
    parser.add_argument("--seed", type=int, default=1)
    if postgres:
        parser.add_argument(
            "--postgres", metavar="URL", help="a server's URL (it is given a database)"
        )
    return parser.parse_args()


@contextmanager
def new_database(server: str) -> Iterator[str]:
    """A new database on the PostgreSQL `server`, dropped when the block ends."""
    name = f"antirelou_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
