"""Second factor for dashboard accounts: time-based one-time codes (TOTP, RFC 6238).

A raid that wants the senders' numbers, or to pause the line, goes after the operators'
passwords (reused elsewhere, phished). With a second factor an account also needs the
six-digit code an authenticator app (Aegis, FreeOTP, Google Authenticator...) shows.

- `antirelou users totp enable EMAIL` makes a secret, shows it as a QR code and a key, and
  stores it only once the app's first code was checked, so a mistyped enrolment locks no
  one out; the account's open sessions end. `disable` removes it. Both are audited.
- At login a code is accepted from the step before to the step after the current one (30
  seconds each: clocks drift) and at most once: the last accepted step is stored, so a
  code seen over a shoulder or in a proxy log cannot be used again.
- A wrong or missing code is a failed login like a wrong password (same message, same
  rate limit per account and address), so the form never tells that the password was
  right.

The secret is stored as it is (an app needs it back to compute codes, so it cannot be
hashed): a copy of the database gives the second factor away, not the password.
"""

from __future__ import annotations

from datetime import datetime

import pyotp
from sqlalchemy import Connection, select, update

from antirelou.operations import OperationError, audit
from antirelou.providers.common import same_text
from antirelou.service import Service
from antirelou.web.auth_tables import sessions, users

ISSUER = "antirelou"
DRIFT_STEPS = 1  # codes of the previous and next 30-second steps are accepted too


def new_secret() -> str:
    """160 random bits in base32, as authenticator apps expect."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    """The otpauth:// link an app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code `code` is (now, or one step either side), else None."""
    code = code.strip().replace(" ", "")
    # isascii() first: "١٢٣٤٥٦" is digits to isdigit(), and compare_digest refuses non-ASCII.
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for offset in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
        if same_text(totp.at(now, counter_offset=offset), code):
            return current + offset
    return None


def accept(conn: Connection, user_id: int, code: str, now: datetime) -> bool:
    """Whether `code` is a fresh code of the user's secret (True too when he has none).

    Run in the login's transaction: the step is stored with a conditional UPDATE, so of two
    logins racing with one code only one gets it."""
    row = conn.execute(
        select(users.c.totp_secret, users.c.totp_last_step).where(users.c.id == user_id)
    ).one()
    if row.totp_secret is None:
        return True
    step = matching_step(row.totp_secret, code, now)
    if step is None:
        return False
    last = users.c.totp_last_step
    used = conn.execute(
        update(users)
        .where(users.c.id == user_id, last.is_(None) | (last < step))
        .values(totp_last_step=step)
    )
    return used.rowcount == 1


def enable(service: Service, user_id: int, secret: str, code: str, actor: str) -> None:
    """Store `secret` for the account once `code` proves the app holds it (audited).

    The account's sessions end: one opened with a stolen password must not outlive the
    second factor that was meant to shut it out."""
    now = service.clock.now()
    step = matching_step(secret, code, now)
    if step is None:
        raise OperationError("that code does not match: check the phone's clock and try again")
    with service.engine.begin() as conn:
        email = _email(conn, user_id)
        conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(totp_secret=secret, totp_last_step=step)
        )
        conn.execute(sessions.delete().where(sessions.c.user_id == user_id))
        audit(conn, actor, "user_totp_enable", email, now)


def disable(service: Service, user_id: int, actor: str) -> None:
    """Remove the account's second factor (audited)."""
    now = service.clock.now()
    with service.engine.begin() as conn:
        email = _email(conn, user_id)
        conn.execute(
            update(users).where(users.c.id == user_id).values(totp_secret=None, totp_last_step=None)
        )
        audit(conn, actor, "user_totp_disable", email, now)


def _email(conn: Connection, user_id: int) -> str:
    email = conn.execute(select(users.c.email).where(users.c.id == user_id)).scalar()
    if email is None:
        raise OperationError(f"no user {user_id}")
    return str(email)
