"""The tables. Money is stored as integer micro-euros (1 EUR = 1,000,000) so sums are exact.

The schema itself is created by Alembic migrations (antirelou/migrations); these objects are
what the code queries with, and a test checks both agree.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
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

# The tables written on every text and always read by their whole primary key: on SQLite,
# stored in that key's order (WITHOUT ROWID), one B-tree less to write. Migration 0018.
KEYED: dict[str, Any] = {"sqlite_with_rowid": False}

incidents = Table(
    "incidents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("line", String(32), nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime, nullable=True),
    Column("opened_by", String(64), nullable=False),  # "detector" or an operator
    Column("closed_by", String(64), nullable=True),
    Column("signals", Text, nullable=False),  # JSON: what raised it, with the figures
    Column("last_signal_at", UtcDateTime, nullable=False),  # hysteresis: closes after a calm
    Column("texts", Integer, nullable=False, default=0),
    Column("legal_hold", Boolean, nullable=False, default=False),
    # At most one open incident per line, whatever the number of processes.
    Index(
        "uq_incidents_open_line",
        "line",
        unique=True,
        sqlite_where=text("closed_at IS NULL"),
        postgresql_where=text("closed_at IS NULL"),
    ),
)

traffic = Table(
    "traffic",
    metadata,
    Column("line", String(32), primary_key=True),
    Column("bucket", UtcDateTime, primary_key=True),  # start of a 10-second bucket
    Column("shard", Integer, primary_key=True),  # spreads concurrent writers over rows
    Column("texts", Integer, nullable=False, default=0),
    Column("new_senders", Integer, nullable=False, default=0),
    Column("hostile_texts", Integer, nullable=False, default=0),
    Column("new_hostile", Integer, nullable=False, default=0),
    Column("new_odd_shape", Integer, nullable=False, default=0),
    **KEYED,
)

traffic_hours = Table(
    "traffic_hours",
    metadata,
    Column("line", String(32), primary_key=True),
    Column("hour", UtcDateTime, primary_key=True),
    Column("shard", Integer, primary_key=True),
    Column("texts", Integer, nullable=False, default=0),
    Column("new_senders", Integer, nullable=False, default=0),
    **KEYED,
)

text_keys = Table(
    "text_keys",
    metadata,
    Column("line", String(32), primary_key=True),
    Column("key", String(32), primary_key=True),
    Column("sender", String(64), primary_key=True),
    Column("first_at", UtcDateTime, nullable=False),
    Index("ix_text_keys_recent", "line", "key", "first_at"),
    **KEYED,
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(96), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", UtcDateTime, nullable=False),
    Column("error", Text, nullable=True),
    UniqueConstraint("dedupe_key", name="uq_alerts_dedupe_key"),
    Index("ix_alerts_status_next", "status", "next_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(128), nullable=True),
    Column("details", Text, nullable=False),
    Index("ix_audit_log_actor_action_at", "actor", "action", "at"),
)

lines = Table(
    "lines",
    metadata,
    Column("number", String(32), primary_key=True),
    Column("provider", String(16), nullable=False),
    Column("paused", Boolean, nullable=False, default=False),
    Column("paused_reason", Text, nullable=True),
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
    Column("abuse", Integer, nullable=False, default=0),  # detect.abuse.AbuseLevel
    Column("signals", Text, nullable=False, default="[]"),  # JSON list of raid signals seen
    Column("incident_id", ForeignKey("incidents.id"), nullable=True),
    UniqueConstraint("provider", "provider_id", name="uq_messages_provider_id"),
    Index("ix_messages_line_received", "line", "received_at"),
    Index("ix_messages_sender", "sender"),
)

# Texts accepted by a web process and waiting for the worker to decide them, when
# `[web] intake = "queued"` (see inbox.py). A row lives for milliseconds; the unique key
# makes a provider's re-delivery of a text still waiting a no-op.
inbox = Table(
    "inbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("provider", String(16), nullable=False),
    Column("provider_id", String(64), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("sms", Text, nullable=False),  # JSON of the InboundSms, signature already checked
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    UniqueConstraint("provider", "provider_id", name="uq_inbox_provider_id"),
)

calls = Table(
    "calls",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("provider", String(16), nullable=False),
    Column("call_id", String(64), nullable=False),
    Column("line", String(32), nullable=False),
    Column("caller", String(64), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("raw", Text, nullable=False),
    Column("answered", Boolean, nullable=False),  # played the message, or rejected
    Column("reasons", Text, nullable=False),
    Column("cost_micros", BigInteger, nullable=False),  # estimated
    Column("incident_id", ForeignKey("incidents.id"), nullable=True),
    UniqueConstraint("provider", "call_id", name="uq_calls_call_id"),
    Index("ix_calls_line_caller", "line", "caller"),
    Index("ix_calls_line_received", "line", "received_at"),  # calls in the last minute
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
    # Velocity: texts since `recent_since` (reset when the velocity window has passed).
    Column("recent_count", Integer, nullable=False, default=0),
    Column("recent_since", UtcDateTime, nullable=True),
    Column("hostile_texts", Integer, nullable=False, default=0),
    Column("raider_signals", Text, nullable=True),  # JSON list, once a sender looked like a raider
    Column("blocked_until", UtcDateTime, nullable=True),
    **KEYED,
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
    Column("held_at", UtcDateTime, nullable=True),  # held during an incident
    Column("released_at", UtcDateTime, nullable=True),
    UniqueConstraint("message_id", name="uq_replies_message_id"),
    Index("ix_replies_status_due", "status", "due_at"),
    Index("ix_replies_provider_message_id", "provider_message_id"),
    Index("ix_replies_line_released", "line", "released_at"),  # the release pace (0005)
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
    Column("opted_out", Boolean, nullable=False, default=False),
    Column("price", Float, nullable=True),  # as reported, with its currency
    Column("currency", String(8), nullable=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("raw", Text, nullable=False),
    # Each send looks for receipts that came first; retention erases them by reply (0019).
    Index("ix_status_events_provider_message_id", "provider_message_id"),
    Index("ix_status_events_reply_id", "reply_id"),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(16), nullable=False),  # inbound | reply | reply_adjust | call
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
    **KEYED,
)

# The money on each provider's account, as the worker last asked it (balances.py). Only
# the latest answer is kept, one row per provider. Migration 0016.
provider_balances = Table(
    "provider_balances",
    metadata,
    Column("provider", String(16), primary_key=True),
    Column("amount_micros", BigInteger, nullable=True),  # in `currency`; None: never said
    Column("currency", String(8), nullable=True),
    Column("asked_at", UtcDateTime, nullable=True),  # the last answer with a balance
    Column("error", Text, nullable=True),  # why the last question had no answer, or None
    Column("error_at", UtcDateTime, nullable=True),
)

# The parts of long inbound texts that a provider delivers one by one (Vonage), kept until
# the whole text is there: the decision is taken once, on the joined text. Migration 0002.
inbound_parts = Table(
    "inbound_parts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("provider", String(16), nullable=False),
    Column("part_id", String(64), nullable=False),  # the provider's id of this part
    Column("group_key", String(160), nullable=False),  # recipient|sender|concat-ref|total
    Column("part", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    Column("sender", String(64), nullable=False),
    Column("recipient", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("raw", Text, nullable=False),  # JSON object of the part's parameters
    Column("received_at", UtcDateTime, nullable=False),
    # The provider_id of the message these parts became; NULL while the text is incomplete.
    Column("assembled_id", String(64), nullable=True),
    UniqueConstraint("provider", "part_id", name="uq_inbound_parts_part_id"),
    Index("ix_inbound_parts_group", "provider", "group_key", "assembled_id"),
    Index("ix_inbound_parts_assembled", "assembled_id"),
)

# The evidence chain's tables share this metadata (migration 0003); importing them here
# means whoever imports the models sees the whole schema.
import antirelou.evidence.tables  # noqa: E402, F401
