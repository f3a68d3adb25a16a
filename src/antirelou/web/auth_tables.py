"""The dashboard's tables: accounts, sessions, API tokens, login attempts, overrides.

They live in the shared `antirelou.models.metadata` so Alembic and the schema test see one
schema (migration 0004). Secrets are never stored: sessions, API tokens and recovery codes
are kept as SHA-256 digests of random values, passwords as argon2 hashes, so a copy of the
database logs nobody in. (A second factor's secret is sealed with a key kept outside the
database: web/sealing.py.)
"""

from __future__ import annotations

import hashlib

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    select,
)

from antirelou.db import UtcDateTime
from antirelou.models import Id, messages, metadata
from antirelou.operations import OperationError


def digest(secret: str) -> str:
    """What the tables keep of a session token, an API token or a recovery code."""
    return hashlib.sha256(secret.encode()).hexdigest()


users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),  # viewer | moderator | admin
    Column("language", String(2), nullable=False, default="fr"),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime, nullable=False),
    # Second factor (web/totp.py, migrations 0007, 0009): the sealed secret (sealing.py),
    # and the last time step whose code was accepted, so that no code is accepted twice.
    Column("totp_secret", String(160), nullable=True),
    Column("totp_last_step", BigInteger, nullable=True),
)

# One-time codes that stand in for the app's code when the phone is lost (web/totp.py,
# migration 0008): SHA-256 digests only, like sessions and tokens.
recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("code_hash", String(64), primary_key=True),
    Column("used_at", UtcDateTime, nullable=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),  # synchroniser token for this session
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_sessions_user", "user_id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("name", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("expires_at", UtcDateTime, nullable=True),  # NULL: until revoked
    Column("role", String(16), nullable=True),  # at most this role; NULL: the account's
)

# Browsers an account logged in from (web/devices.py): the account's lockout after failed
# logins does not apply to them, so a stranger's failures cannot lock its holder out.
trusted_devices = Table(
    "trusted_devices",
    metadata,
    # One row per account the browser logged in to: the same token may be trusted for more.
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime, nullable=False),
    # Set while the row is a link to trust a browser (devices.make_link), not yet used.
    Column("link_until", UtcDateTime),
    Index("ix_trusted_devices_user", "user_id"),
)

# One row per failed login, keyed by "email:...", "ip:..." or "device:..."; counted over a
# window.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(300), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_login_failures_key_at", "key", "at"),
)

# Operator edits of what the TOML file says (a line's reply, the caps). Key examples:
# "line:+33939000021:reply", "budget:daily_cap", "budget:total". Values are JSON.
setting_overrides = Table(
    "setting_overrides",
    metadata,
    Column("key", String(96), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by", String(128), nullable=False),
)

# A sender whose texts must be kept whatever the retention says (a complaint is filed).
sender_holds = Table(
    "sender_holds",
    metadata,
    Column("line", String(32), primary_key=True),
    Column("number", String(64), primary_key=True),
    Column("set_at", UtcDateTime, nullable=False),
    Column("set_by", String(128), nullable=False),
    Column("note", Text, nullable=False, default=""),
)

# The messages of one incident, newest first: incident pages and the incident filter.
messages_by_incident = Index("ix_messages_incident", messages.c.incident_id, messages.c.id)


def email_of(conn: Connection, user_id: int) -> str:
    """The account's email (what audit rows name it by); OperationError when there is none."""
    email = conn.execute(select(users.c.email).where(users.c.id == user_id)).scalar()
    if email is None:
        raise OperationError(f"no user {user_id}")
    return str(email)
