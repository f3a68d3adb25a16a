"""The tables. Money is stored as integer micro-euros (1 EUR = 1,000,000) so sums are exact.

The schema itself is created by Alembic migrations (antirelou/migrations); these objects are
what the code queries with, and a test checks both agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from antirelou.db import UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
Id = BigInteger().with_variant(Integer(), "sqlite")

lines = Table(
    "lines",
    metadata,
    Column("number", String(32), primary_key=True),
    Column("provider", String(16), nullable=False),
    Column("paused", Boolean, nullable=False, default=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("provider", String(16), nullable=False),
    Column("provider_id", String(64), nullable=False),
    Column("line", String(32), nullable=False),
    Column("sender", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("num_media", Integer, nullable=False, default=0),
    Column("received_at", UtcDateTime, nullable=False),
    Column("raw", Text, nullable=False),  # JSON object of every parameter received
    Column("signature_checked", Boolean, nullable=False),
    Column("decision", String(8), nullable=False),  # reply | hold | none
    Column("reasons", Text, nullable=False),  # JSON list of reason codes
    UniqueConstraint("provider", "provider_id", name="uq_messages_provider_id"),
    Index("ix_messages_line_received", "line", "received_at"),
    Index("ix_messages_sender", "sender"),
)

senders = Table(
    "senders",
    metadata,
    Column("line", String(32), primary_key=True),
    Column("number", String(64), primary_key=True),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("message_count", Integer, nullable=False, default=0),
    # The once-per-window guard: only a conditional UPDATE on this row may claim a reply.
    Column("last_reply_at", UtcDateTime, nullable=True),
    Column("opted_out_at", UtcDateTime, nullable=True),
)

replies = Table(
    "replies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", ForeignKey("messages.id"), nullable=False),
    Column("line", String(32), nullable=False),
    Column("recipient", String(64), nullable=False),
    Column("claimed_at", UtcDateTime, nullable=False),  # = senders.last_reply_at when claimed
    Column("body", Text, nullable=False),
    Column("encoding", String(8), nullable=False),
    Column("segments", Integer, nullable=False),
    Column("reserved_micros", BigInteger, nullable=False),
    Column("cost_micros", BigInteger, nullable=True),  # what it really cost, once known
    Column("budget_day", String(10), nullable=False),  # the day counter it was reserved on
    Column("status", String(16), nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UtcDateTime, nullable=True),
    Column("first_attempt_at", UtcDateTime, nullable=True),
    Column("maybe_sent", Boolean, nullable=False, default=False),
    Column("provider_message_id", String(64), nullable=True),
    Column("error_code", String(16), nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("message_id", name="uq_replies_message_id"),
    # Two replies to one sender on one line can never share a claim instant.
    UniqueConstraint("line", "recipient", "claimed_at", name="uq_replies_claim"),
    Index("ix_replies_status_due", "status", "due_at"),
    Index("ix_replies_provider_message_id", "provider_message_id"),
)

status_events = Table(
    "status_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("provider", String(16), nullable=False),
    Column("provider_message_id", String(64), nullable=False),
    Column("reply_id", ForeignKey("replies.id"), nullable=True),
    Column("state", String(16), nullable=False),
    Column("error_code", String(16), nullable=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("raw", Text, nullable=False),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(16), nullable=False),  # inbound | reply | reply_adjust
    Column("amount_micros", BigInteger, nullable=False),
    Column("line", String(32), nullable=True),
    Column("message_id", ForeignKey("messages.id"), nullable=True),
    Column("reply_id", ForeignKey("replies.id"), nullable=True),
    Column("note", Text, nullable=True),
    Index("ix_ledger_at", "at"),
)

budget_counters = Table(
    "budget_counters",
    metadata,
    Column("key", String(32), primary_key=True),  # "total" or "day:YYYY-MM-DD"
    Column("spent_micros", BigInteger, nullable=False, default=0),
    Column("reserved_micros", BigInteger, nullable=False, default=0),
)
