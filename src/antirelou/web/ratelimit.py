"""Login rate limiting, kept in the database so every process and a restart agree.

Failures are counted per account and per client address over a sliding window. The account
limit stops guessing one password slowly from many addresses; the address limit stops one
machine from trying many accounts. A success clears the account's count.

An attempt from a browser trusted for the account (devices.py) is counted under that
browser's key alone, and only that key's failures limit it: strangers' failures cannot lock
the account's holder out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from antirelou.web.accounts import normalise_email
from antirelou.web.auth_tables import login_failures

WINDOW = timedelta(minutes=15)
PER_ACCOUNT = 5
PER_ADDRESS = 20
PER_DEVICE = 5


def _keys(email: str, address: str) -> tuple[str, str]:
    return f"email:{normalise_email(email)}"[:300], f"ip:{address}"[:300]


def _failures(conn: Connection, key: str, now: datetime) -> int:
    f = login_failures
    query = select(func.count()).where(f.c.key == key, f.c.at > now - WINDOW)
    return int(conn.execute(query).scalar_one())


def is_limited(
    conn: Connection, email: str, address: str, now: datetime, device: str | None = None
) -> bool:
    """Whether an attempt is refused before its password is even checked; `device` is a
    trusted browser's key (devices.failure_key), counted alone."""
    if device is not None:
        return _failures(conn, device, now) >= PER_DEVICE
    account, client = _keys(email, address)
    return (
        _failures(conn, account, now) >= PER_ACCOUNT or _failures(conn, client, now) >= PER_ADDRESS
    )


def record_failure(
    conn: Connection, email: str, address: str, now: datetime, device: str | None = None
) -> None:
    f = login_failures
    keys = (device,) if device is not None else _keys(email, address)
    conn.execute(f.insert(), [{"key": key, "at": now} for key in keys])
    conn.execute(f.delete().where(f.c.at <= now - WINDOW))


def clear(conn: Connection, email: str, device: str | None = None) -> None:
    account, _ = _keys(email, "")
    keys = [account] if device is None else [account, device]
    conn.execute(login_failures.delete().where(login_failures.c.key.in_(keys)))
