"""Operator accounts: roles, argon2 password hashes, and the audited changes to them.

Three roles, each one including the one below it: a viewer reads (phone numbers masked),
a moderator acts on the line (pause, incidents, held replies, senders) and sees numbers in
full, an admin also edits the reply, the caps, donations and accounts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, func, select, update

from antirelou.operations import OperationError, audit
from antirelou.service import Service
from antirelou.web import totp
from antirelou.web.auth_tables import digest, email_of, sessions, trusted_devices, users
from antirelou.web.reads import reader
from antirelou.web.sealing import SecretBox

MIN_PASSWORD_LENGTH = 12
LANGUAGES = ("fr", "en")
# argon2id with the library's defaults (RFC 9106 "low memory" profile): ~50 ms per check.
_hasher = PasswordHasher()
# Checked against when the email is unknown, so a miss costs as long as a hit: response
# times do not tell which addresses have an account.
_DUMMY_HASH = _hasher.hash("not a real password, only here to spend the same time")


class Role(enum.StrEnum):
    VIEWER = "viewer"
    MODERATOR = "moderator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def includes(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANKS = {Role.VIEWER: 0, Role.MODERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class User:
    id: int
    email: str
    role: Role
    language: str
    disabled: bool = False
    totp: bool = False  # a second factor is required at login (web/totp.py)


def lacks_second_factor(service: Service, user: User) -> bool:
    """Whether [web] second_factor_roles asks this account for a second factor it lacks."""
    return not user.totp and user.role.value in service.settings.web.second_factor_roles


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_password(password: str) -> None:
    """Refuse passwords a raider could guess; length is what matters (NIST 800-63B)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise OperationError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")


def user_from_row(row: Any) -> User:
    return User(
        int(row.id),
        row.email,
        Role(row.role),
        row.language,
        bool(row.disabled),
        row.totp_secret is not None,
    )


def create_user(service: Service, email: str, password: str, role: Role, actor: str) -> int:
    """Add an account (audited). Refuses a duplicate email or a short password."""
    email = normalise_email(email)
    if "@" not in email:
        raise OperationError(f"{email!r} is not an email address")
    check_password(password)
    now = service.clock.now()
    with service.engine.begin() as conn:
        if conn.execute(select(users.c.id).where(users.c.email == email)).first():
            raise OperationError(f"{email} already has an account")
        new_id = conn.execute(
            users.insert()
            .values(
                email=email,
                password_hash=_hasher.hash(password),
                role=role.value,
                language="fr",
                disabled=False,
                created_at=now,
            )
            .returning(users.c.id)
        ).scalar_one()
        audit(conn, actor, "user_add", email, now, role=role.value)
    return int(new_id)


def authenticate(
    conn: Connection, email: str, password: str, code: str, now: datetime, box: SecretBox
) -> User | None:
    """The account for these credentials, or None. Takes the same time either way.

    `code` is the authenticator app's code, checked (and used up) only for an account
    with a second factor, and only once the password is right."""
    row = conn.execute(select(users).where(users.c.email == normalise_email(email))).first()
    stored = row.password_hash if row is not None else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled:
        return None
    if not totp.accept(conn, int(row.id), code, now, box):
        return None
    if _hasher.check_needs_rehash(stored):
        conn.execute(
            update(users).where(users.c.id == row.id).values(password_hash=_hasher.hash(password))
        )
    return user_from_row(row)


def find_user(conn: Connection, email: str) -> User | None:
    row = conn.execute(select(users).where(users.c.email == normalise_email(email))).first()
    return None if row is None else user_from_row(row)


def list_users(service: Service) -> list[User]:
    with reader(service).connect() as conn:
        return [user_from_row(row) for row in conn.execute(select(users).order_by(users.c.email))]


def count_users(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(users)).scalar_one())


def change_user(
    service: Service,
    user_id: int,
    actor: str,
    *,
    role: Role | None = None,
    disabled: bool | None = None,
    password: str | None = None,
) -> None:
    """Change an account (audited). Disabling or a new password ends its sessions and
    forgets the browsers trusted for it (devices.py)."""
    values: dict[str, object] = {}
    if role is not None:
        values["role"] = role.value
    if disabled is not None:
        values["disabled"] = disabled
    if password is not None:
        check_password(password)
        values["password_hash"] = _hasher.hash(password)
    if not values:
        return
    now = service.clock.now()
    with service.engine.begin() as conn:
        email = email_of(conn, user_id)
        conn.execute(update(users).where(users.c.id == user_id).values(**values))
        if disabled or password is not None:  # and a stolen laptop is trusted no more
            conn.execute(sessions.delete().where(sessions.c.user_id == user_id))
            conn.execute(trusted_devices.delete().where(trusted_devices.c.user_id == user_id))
        shown = {k: v for k, v in values.items() if k != "password_hash"}
        audit(conn, actor, "user_change", email, now, password=password is not None, **shown)


def log_out_others(
    service: Service,
    user_id: int,
    actor: str,
    *,
    session: str | None = None,
    device: str | None = None,
) -> int:
    """End the account's sessions and forget the browsers trusted for it (audited), all but
    this browser's `session` and `device` tokens when its holder asks from the dashboard.
    For a lost or stolen laptop, without changing the password. Returns how many trusted
    browsers were forgotten."""
    ended = sessions.delete().where(sessions.c.user_id == user_id)
    forgotten = trusted_devices.delete().where(trusted_devices.c.user_id == user_id)
    if session:
        ended = ended.where(sessions.c.token_hash != digest(session))
    if device:
        forgotten = forgotten.where(trusted_devices.c.token_hash != digest(device))
    now = service.clock.now()
    with service.engine.begin() as conn:
        email = email_of(conn, user_id)
        closed = conn.execute(ended).rowcount
        count = conn.execute(forgotten).rowcount
        audit(conn, actor, "user_logout_others", email, now, sessions=closed, browsers=count)
    return count


def set_language(service: Service, user_id: int, language: str) -> None:
    """A preference, not an operator action: not audited."""
    if language not in LANGUAGES:
        raise OperationError(f"language must be one of {', '.join(LANGUAGES)}")
    with service.engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == user_id).values(language=language))
