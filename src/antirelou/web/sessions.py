"""Login sessions and API tokens: random tokens given out once, kept only as digests.

A session is a row, not a signed cookie, so logout, disabling an account or changing its
password ends it at once, in every process. Each session carries its own CSRF token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection, or_, select, update

from antirelou.durations import parse_duration
from antirelou.operations import OperationError, audit
from antirelou.web.accounts import Role, User, user_from_row
from antirelou.web.auth_tables import api_tokens, digest, sessions, users

SESSION_TTL = timedelta(hours=12)
TOKEN_PREFIX = "arl_"  # noqa: S105 - a prefix that makes leaked tokens easy to grep
LAST_USED_EVERY = timedelta(minutes=1)  # do not write on every API call
# What a new token lives by default, and at most unless "never" is asked for.
TOKEN_LIFETIME = "90d"  # noqa: S105 - a duration, not a secret
LONGEST_TOKEN = timedelta(days=3660)


@dataclass(frozen=True)
class SessionInfo:
    user: User
    csrf: str


def open_session(conn: Connection, user_id: int, now: datetime) -> tuple[str, str]:
    """A new session for the user: (cookie token, CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    conn.execute(
        sessions.insert().values(
            token_hash=digest(token),
            user_id=user_id,
            csrf=csrf,
            created_at=now,
            expires_at=now + SESSION_TTL,
        )
    )
    # Expired sessions are swept here: logins are rare, so this costs nothing.
    conn.execute(sessions.delete().where(sessions.c.expires_at <= now))
    return token, csrf


_SESSION = (
    select(users, sessions.c.csrf)
    .join(sessions, sessions.c.user_id == users.c.id)
    .where(users.c.disabled.is_(False))
)


def session_of(conn: Connection, token: str, now: datetime) -> SessionInfo | None:
    row = conn.execute(
        _SESSION.where(sessions.c.token_hash == digest(token), sessions.c.expires_at > now)
    ).first()
    if row is None:
        return None
    return SessionInfo(user_from_row(row), row.csrf)


def close_session(conn: Connection, token: str) -> None:
    conn.execute(sessions.delete().where(sessions.c.token_hash == digest(token)))


def create_token(
    conn: Connection,
    user_id: int,
    name: str,
    now: datetime,
    lifetime: timedelta | None,
    *,
    role: Role | None = None,
) -> str:
    """A new API token that works for `lifetime` (None: until revoked) with at most `role`
    (None: the account's, whatever it becomes); shown once, then only its digest is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        api_tokens.insert().values(
            user_id=user_id,
            token_hash=digest(token),
            name=name[:64],
            created_at=now,
            expires_at=None if lifetime is None else now + lifetime,
            role=None if role is None else role.value,
        )
    )
    return token


def issue_token(
    conn: Connection, user: User, actor: str, now: datetime, *, name: str, expires: str, role: str
) -> tuple[str, datetime | None]:
    """A new token for `user`, made and audited in the caller's transaction, as asked from
    the dashboard or the terminal: `expires` as token_lifetime reads it, `role` as
    token_role does. The token and when it expires; OperationError for a bad request."""
    lifetime = token_lifetime(expires)
    cap = token_role(role, user.role)
    token = create_token(conn, user.id, name, now, lifetime, role=cap)
    audit(
        conn, actor, "token_create", user.email, now, name=name, expires=expires, role=role or None
    )
    return token, None if lifetime is None else now + lifetime


def token_lifetime(text: str) -> timedelta | None:
    """ "30d", "12w", "365d"... or "never" (None); OperationError for anything else."""
    text = text.strip().lower()
    if text == "never":
        return None
    try:
        if text.isdigit():
            raise ValueError(f"{text!r} needs a unit, e.g. 90d")
        lifetime = parse_duration(text, longest=LONGEST_TOKEN)
    except ValueError as exc:
        raise OperationError(f"token lifetime: {exc}, or never") from None
    if lifetime <= timedelta(0):
        raise OperationError("token lifetime: longer than nothing, please")
    return lifetime


@dataclass(frozen=True)
class TokenUse:
    user: User  # the account, with its own role
    token_id: int
    stale: bool  # last_used_at is old enough to be worth a write
    cap: Role | None  # the token acts with at most this role

    def acting_user(self) -> User:
        """The account as this token may act: its role lowered to the token's cap."""
        if self.cap is None or self.cap.includes(self.user.role):
            return self.user
        return replace(self.user, role=self.cap)


def token_user(conn: Connection, token: str, now: datetime) -> TokenUse | None:
    """Whose token this is (read only: the caller records the use if `stale`)."""
    t = api_tokens
    row = conn.execute(
        select(users, t.c.id.label("token_id"), t.c.last_used_at, t.c.role.label("cap"))
        .join(t, t.c.user_id == users.c.id)
        .where(t.c.token_hash == digest(token), t.c.revoked_at.is_(None))
        .where(or_(t.c.expires_at.is_(None), t.c.expires_at > now))
        .where(users.c.disabled.is_(False))
    ).first()
    if row is None:
        return None
    stale = row.last_used_at is None or row.last_used_at < now - LAST_USED_EVERY
    cap = None if row.cap is None else Role(row.cap)
    return TokenUse(user_from_row(row), int(row.token_id), stale, cap)


def touch_token(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))


@dataclass(frozen=True)
class TokenRow:
    id: int
    owner: str  # the account's email
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None
    role: str | None


def list_tokens(conn: Connection, user_id: int | None) -> list[TokenRow]:
    """One account's tokens, or everyone's (None), newest first."""
    t = api_tokens
    query = (
        select(t.c.id, users.c.email, t.c.name, t.c.created_at, t.c.last_used_at)
        .add_columns(t.c.revoked_at, t.c.expires_at, t.c.role)
        .join(users, users.c.id == t.c.user_id)
        .order_by(t.c.id.desc())
    )
    if user_id is not None:
        query = query.where(t.c.user_id == user_id)
    return [TokenRow(*row) for row in conn.execute(query)]


def token_role(text: str, account: Role) -> Role | None:
    """The role a new token acts with: "" for the account's own (None), else a role no
    higher than the account's; OperationError otherwise."""
    if not text.strip():
        return None
    try:
        role = Role(text.strip().lower())
    except ValueError:
        raise OperationError(f"no role {text!r} (viewer, moderator or admin)") from None
    if not account.includes(role):
        raise OperationError(f"a token cannot do more than its account ({account.value})")
    return role


def revoke_token(conn: Connection, token_id: int, user_id: int | None, now: datetime) -> bool:
    """Revoke one of the account's tokens (any account's with None, from the terminal);
    False when there is no such active token."""
    t = api_tokens
    query = update(t).where(t.c.id == token_id, t.c.revoked_at.is_(None))
    if user_id is not None:
        query = query.where(t.c.user_id == user_id)
    return conn.execute(query.values(revoked_at=now)).rowcount == 1


def revoke_all_tokens(conn: Connection, user_id: int, now: datetime) -> int:
    """Revoke every active token of an account; how many there were."""
    t = api_tokens
    query = update(t).where(t.c.user_id == user_id, t.c.revoked_at.is_(None))
    return int(conn.execute(query.values(revoked_at=now)).rowcount)
