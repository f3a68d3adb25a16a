"""Device cookies: a browser that logged in to an account is spared that account's lockout.

The login limits (ratelimit.py) count failures per account: five within 15 minutes, and
the account is refused for a while. Alone, that lets anyone who knows an operator's address
keep her out of the dashboard, which is what a raid would do while it runs. OWASP's answer
("Slow down online guessing attacks with device cookies"): a login gives the browser a
random token in a cookie (HttpOnly, a year; only its digest is stored, with the account).
An attempt that carries the token of a browser trusted for that account is counted against
that browser alone: a stranger's failures do not lock it out, and its own failures (a
stolen laptop guessing) lock only it. Attempts without one are limited as before, per
account and per address. A device cookie opens nothing by itself: the password (and the
code) are still asked.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update
from starlette.requests import Request
from starlette.responses import Response

from antirelou.service import Service
from antirelou.web import cookies
from antirelou.web.accounts import normalise_email
from antirelou.web.auth_tables import digest, trusted_devices, users

KEEP = timedelta(days=365)  # a browser not used to log in for this long is forgotten
SECURE_COOKIE = "__Host-antirelou-device"  # https: Path=/, Secure, no Domain
PLAIN_COOKIE = "antirelou_device"  # plain http on a loopback address (development)
_d = trusted_devices


def cookie_name(service: Service) -> str:
    return SECURE_COOKIE if cookies.secure(service) else PLAIN_COOKIE


def token_of(request: Request, service: Service) -> str | None:
    return request.cookies.get(cookie_name(service)) or None


def failure_key(conn: Connection, token: str | None, email: str, now: datetime) -> str | None:
    """The key a login attempt's failures count under when `token` is a browser trusted for
    `email`'s account (ratelimit.py); None for any other attempt."""
    if not token:
        return None
    query = (
        select(_d.c.token_hash)
        .join(users, users.c.id == _d.c.user_id)
        .where(_d.c.token_hash == digest(token), _d.c.last_used_at > now - KEEP)
        .where(users.c.email == normalise_email(email))
    )
    found = conn.execute(query).scalar()
    return None if found is None else f"device:{found}"


def remember(conn: Connection, token: str | None, user_id: int, now: datetime) -> str | None:
    """After a login: the browser's token, if it is trusted for this account, is touched;
    else a new one is made and returned, for the caller to set (set_cookie)."""
    conn.execute(_d.delete().where(_d.c.last_used_at <= now - KEEP))  # logins are rare
    if token:
        known = _d.c.token_hash == digest(token)
        touched = conn.execute(
            update(_d).where(known, _d.c.user_id == user_id).values(last_used_at=now)
        )
        if touched.rowcount == 1:
            return None
    return trust(conn, user_id, now)


def trust(conn: Connection, user_id: int, now: datetime) -> str:
    """A new token for a browser that just proved it is the account's holder."""
    fresh = secrets.token_urlsafe(32)
    row = {"token_hash": digest(fresh), "user_id": user_id, "created_at": now}
    conn.execute(_d.insert().values(**row, last_used_at=now))
    return fresh


def set_cookie(response: Response, service: Service, token: str) -> None:
    cookies.set_private(response, service, cookie_name(service), token, KEEP)
