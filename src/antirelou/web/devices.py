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

A new browser during such an attack is a stranger, locked out with the rest. An admin on
the server makes it a link (`antirelou users trust-link EMAIL`): single-use, valid for
minutes, and opened in that browser it makes the browser trusted for the account, as a
login would have. The row waits in this table with `link_until` set; the token the link
carries is replaced by a fresh one when it is used, so the printed one is worth nothing
afterwards (terminals and proxies keep what they saw).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, or_, select, update
from starlette.requests import Request
from starlette.responses import Response

from antirelou.durations import format_duration
from antirelou.operations import OperationError, audit
from antirelou.service import Service
from antirelou.web import cookies
from antirelou.web.accounts import find_user, normalise_email
from antirelou.web.auth_tables import digest, trusted_devices, users

KEEP = timedelta(days=365)  # a browser not used to log in for this long is forgotten
LINK_LASTS = timedelta(minutes=15)  # a link to trust a browser, unless asked otherwise
SECURE_COOKIE = "__Host-antirelou-device"  # https: Path=/, Secure, no Domain
PLAIN_COOKIE = "antirelou_device"  # plain http on a loopback address (development)
_d = trusted_devices
_BROWSER = _d.c.link_until.is_(None)  # a trusted browser, not a link waiting to be used


def cookie_name(service: Service) -> str:
    return SECURE_COOKIE if cookies.secure(service) else PLAIN_COOKIE


def token_of(request: Request, service: Service) -> str | None:
    return request.cookies.get(cookie_name(service)) or None


def failure_key(conn: Connection, token: str | None, email: str, now: datetime) -> str | None:
    """The key a login attempt's failures count under when `token` is a browser trusted for
    `email`'s account (ratelimit.py); None for any other attempt. The key names the account
    too: a shared laptop guessing one account's password is not locked out of the others."""
    if not token:
        return None
    query = (
        select(_d.c.token_hash, _d.c.user_id)
        .join(users, users.c.id == _d.c.user_id)
        .where(_d.c.token_hash == digest(token), _d.c.last_used_at > now - KEEP, _BROWSER)
        .where(users.c.email == normalise_email(email))
    )
    found = conn.execute(query).first()
    return None if found is None else f"device:{found.token_hash}:{found.user_id}"


def remember(conn: Connection, token: str | None, user_id: int, now: datetime) -> str | None:
    """After a login: the browser's token, if it is trusted for this account, is touched;
    else the browser is trusted for it (trust_browser)."""
    conn.execute(delete(_d).where(or_(_d.c.last_used_at <= now - KEEP, _d.c.link_until <= now)))
    if token:  # (logins are rare: the sweep above costs nothing)
        known = (_d.c.token_hash == digest(token)) & _BROWSER
        touched = conn.execute(
            update(_d).where(known, _d.c.user_id == user_id).values(last_used_at=now)
        )
        if touched.rowcount == 1:
            return None
    return trust_browser(conn, token, user_id, now)


def trust_browser(conn: Connection, token: str | None, user_id: int, now: datetime) -> str | None:
    """Trust the browser whose cookie holds `token` for the account. A browser trusted for
    other accounts (a collective's shared laptop) keeps its token, trusted for this one too:
    returns None. Any other gets a new token, returned for the caller to set."""
    if token:
        known = digest(token)
        others = select(_d.c.token_hash).where(_d.c.token_hash == known, _BROWSER).limit(1)
        if conn.execute(others).first() is not None:
            mine = (_d.c.token_hash == known) & (_d.c.user_id == user_id)
            conn.execute(delete(_d).where(mine))  # a link of its own, say
            _insert(conn, known, user_id, now)
            return None
    fresh = secrets.token_urlsafe(32)
    _insert(conn, digest(fresh), user_id, now)
    return fresh


def _insert(
    conn: Connection, token_hash: str, user_id: int, now: datetime, until: datetime | None = None
) -> None:
    row = {"token_hash": token_hash, "user_id": user_id, "created_at": now, "last_used_at": now}
    conn.execute(_d.insert().values(**row, link_until=until))


def set_cookie(response: Response, service: Service, token: str) -> None:
    cookies.set_private(response, service, cookie_name(service), token, KEEP)


def make_link(conn: Connection, user_id: int, now: datetime, lasts: timedelta) -> str:
    """A single-use token that trusts the browser it is opened in for the account."""
    token = secrets.token_urlsafe(32)
    _insert(conn, digest(token), user_id, now, until=now + lasts)
    return token


def issue_link(service: Service, email: str, actor: str, lasts: timedelta) -> tuple[str, datetime]:
    """A link (make_link) for the account, audited: its URL and when it stops working.
    OperationError when there is no such account."""
    now = service.clock.now()
    with service.engine.begin() as conn:
        user = find_user(conn, email)
        if user is None:
            raise OperationError(f"no account {email}")
        token = make_link(conn, user.id, now, lasts)
        audit(conn, actor, "device_link_create", user.email, now, valid=format_duration(lasts))
    return f"{service.settings.public_base}/login/device?t={token}", now + lasts


def use_link(
    conn: Connection, token: str, browser: str | None, now: datetime
) -> tuple[str, str | None] | None:
    """For a link not used nor expired, opened in the browser whose device cookie is
    `browser`: (the account's email, the browser's new device token or None to keep its
    own, see trust_browser); None for any other token. Once used, the link is gone."""
    link = (_d.c.token_hash == digest(token)) & (_d.c.link_until > now)
    query = select(_d.c.user_id, users.c.email).join(users, users.c.id == _d.c.user_id)
    found = conn.execute(query.where(link, users.c.disabled.is_(False))).first()
    if found is None:
        return None
    if conn.execute(delete(_d).where(link)).rowcount != 1:  # used at the same moment
        return None
    return found.email, trust_browser(conn, browser, found.user_id, now)
