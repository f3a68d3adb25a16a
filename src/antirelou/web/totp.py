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

- Enabling also makes ten recovery codes, shown once: each logs in once in place of the
  app's code, for the day the phone is lost, stolen or wiped. Only their SHA-256 digests are
  stored (twelve random digits each, about 40 bits: the password is needed too, and failed
  logins are rate limited). `antirelou users totp codes EMAIL` makes a new set and voids
  the old one; using one is audited, with how many are left.

The secret cannot be hashed (the server computes the codes from it): it is sealed with a
key kept outside the database (sealing.py), so a copy of the database alone gives no
second factor away.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from pathlib import Path

import pyotp
from sqlalchemy import Connection, func, select, update

from antirelou.operations import OperationError, audit
from antirelou.providers.common import same_text
from antirelou.service import Service
from antirelou.web.auth_tables import digest, email_of, recovery_codes, sessions, users
from antirelou.web.sealing import PREFIX, SealError, SecretBox

log = logging.getLogger(__name__)

ISSUER = "antirelou"
DRIFT_STEPS = 1  # codes of the previous and next 30-second steps are accepted too
RECOVERY_CODES = 10
RECOVERY_DIGITS = 12  # digits only: the login field's keyboard is numeric on phones


def box_of(service: Service) -> SecretBox:
    """What seals and opens this instance's second-factor secrets."""
    return SecretBox(Path(service.settings.web.totp_key_path))


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


def new_recovery_codes() -> list[str]:
    """RECOVERY_CODES random codes, shown as "1234-5678-9012"."""
    codes = []
    for _ in range(RECOVERY_CODES):
        digits = "".join(secrets.choice("0123456789") for _ in range(RECOVERY_DIGITS))
        codes.append("-".join(digits[i : i + 4] for i in range(0, RECOVERY_DIGITS, 4)))
    return codes


def _recovery_digest(code: str) -> str | None:
    """The stored digest of a recovery code as typed (spaces and dashes ignored), or None
    when it cannot be one."""
    digits = "".join(ch for ch in code if ch not in " -")
    if not (digits.isascii() and digits.isdigit() and len(digits) == RECOVERY_DIGITS):
        return None
    return digest(digits)


def _store_recovery_codes(conn: Connection, user_id: int, codes: list[str]) -> None:
    """Replace the account's recovery codes with `codes`."""
    conn.execute(recovery_codes.delete().where(recovery_codes.c.user_id == user_id))
    rows = [{"user_id": user_id, "code_hash": _recovery_digest(code)} for code in codes]
    conn.execute(recovery_codes.insert(), rows)


def _use_recovery_code(conn: Connection, user_id: int, code_hash: str, now: datetime) -> bool:
    """Spend the account's unused recovery code of this digest (audited), if it has one.

    A conditional UPDATE, like the time step: of two logins racing with one code, one wins."""
    r = recovery_codes.c
    used = conn.execute(
        update(recovery_codes)
        .where(r.user_id == user_id, r.code_hash == code_hash, r.used_at.is_(None))
        .values(used_at=now)
    )
    if used.rowcount != 1:
        return False
    left = conn.execute(
        select(func.count()).where(r.user_id == user_id, r.used_at.is_(None))
    ).scalar()
    email = email_of(conn, user_id)
    audit(conn, f"web:{email}", "user_recovery_code_used", email, now, left=left)
    return True


def recovery_codes_left(service: Service) -> dict[int, int]:
    """Unused recovery codes per account (accounts with none left are absent)."""
    r = recovery_codes.c
    query = select(r.user_id, func.count()).where(r.used_at.is_(None)).group_by(r.user_id)
    with service.engine.connect() as conn:
        return {int(user_id): int(count) for user_id, count in conn.execute(query)}


def accept(conn: Connection, user_id: int, code: str, now: datetime, box: SecretBox) -> bool:
    """Whether `code` is a fresh code of the user's secret, or one of his unused recovery
    codes (True too when he has no second factor).

    Run in the login's transaction: the step is stored with a conditional UPDATE, so of two
    logins racing with one code only one gets it. A secret that cannot be opened (the key
    file lost) refuses the app's codes, not the recovery codes."""
    row = conn.execute(
        select(users.c.totp_secret, users.c.totp_last_step).where(users.c.id == user_id)
    ).one()
    if row.totp_secret is None:
        return True
    recovery = _recovery_digest(code)
    if recovery is not None:
        return _use_recovery_code(conn, user_id, recovery, now)
    try:
        secret = box.open(row.totp_secret, user_id)
    except SealError as error:
        log.error("account %s: its second factor cannot be checked: %s", user_id, error)
        return False
    step = matching_step(secret, code, now)
    if step is None:
        return False
    last = users.c.totp_last_step
    used = conn.execute(
        update(users)
        .where(users.c.id == user_id, last.is_(None) | (last < step))
        .values(totp_last_step=step)
    )
    return used.rowcount == 1


def enable(service: Service, user_id: int, secret: str, code: str, actor: str) -> list[str]:
    """Store `secret` for the account once `code` proves the app holds it (audited); return
    a new set of recovery codes, to be shown once.

    The account's sessions end: one opened with a stolen password must not outlive the
    second factor that was meant to shut it out."""
    now = service.clock.now()
    step = matching_step(secret, code, now)
    if step is None:
        raise OperationError("that code does not match: check the phone's clock and try again")
    codes = new_recovery_codes()
    with service.engine.begin() as conn:
        email = email_of(conn, user_id)
        try:
            sealed = box_of(service).seal(secret, user_id)
        except SealError as error:
            raise OperationError(str(error)) from None
        conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(totp_secret=sealed, totp_last_step=step)
        )
        _store_recovery_codes(conn, user_id, codes)
        conn.execute(sessions.delete().where(sessions.c.user_id == user_id))
        audit(conn, actor, "user_totp_enable", email, now)
    return codes


def renew_recovery_codes(service: Service, user_id: int, actor: str) -> list[str]:
    """A new set of recovery codes for an account with a second factor; the old set stops
    working (audited)."""
    codes = new_recovery_codes()
    with service.engine.begin() as conn:
        email = email_of(conn, user_id)
        has_factor = conn.execute(select(users.c.totp_secret).where(users.c.id == user_id)).scalar()
        if has_factor is None:
            raise OperationError(f"{email} has no second factor: enable it first")
        _store_recovery_codes(conn, user_id, codes)
        audit(conn, actor, "user_recovery_codes_renewed", email, service.clock.now())
    return codes


def seal_plain_secrets(service: Service) -> int:
    """Seal the secrets stored before sealing existed (migration 0009); how many. `serve`
    and `worker` run it at start, as the service's own user, who must read the key."""
    secret = users.c.totp_secret
    query = select(users.c.id, secret).where(secret.is_not(None), secret.not_like(f"{PREFIX}%"))
    with service.engine.connect() as conn:
        plain = conn.execute(query).all()
    if not plain:  # the usual start: no write transaction
        return 0
    box = box_of(service)
    with service.engine.begin() as conn:
        for user_id, stored in plain:
            sealed = box.seal(stored, user_id)
            # Only if still the plain secret read above (an enrolment may have run since).
            conn.execute(
                update(users)
                .where(users.c.id == user_id, secret == stored)
                .values(totp_secret=sealed)
            )
    return len(plain)


def disable(service: Service, user_id: int, actor: str) -> None:
    """Remove the account's second factor (audited)."""
    now = service.clock.now()
    with service.engine.begin() as conn:
        email = email_of(conn, user_id)
        conn.execute(
            update(users).where(users.c.id == user_id).values(totp_secret=None, totp_last_step=None)
        )
        conn.execute(recovery_codes.delete().where(recovery_codes.c.user_id == user_id))
        audit(conn, actor, "user_totp_disable", email, now)
