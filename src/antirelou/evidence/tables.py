"""The evidence tables, in the shared `antirelou.models.metadata` (migration 0003).

    evidence_head         one row: the last record's seq and hash; its row lock orders appends
    evidence_records      the chain: one row per fact, hashed fields + purgeable salt/content
    evidence_checkpoints  signed (and optionally timestamped) statements of the chain head

Only `salt` and `content` are ever changed after insert, and only by retention (to NULL,
together): the chain hashes the content's digest, never the content, so the proof of
what remains holds once personal data is gone, and a digest whose salt is gone cannot be
opened even for guessable content such as a phone number.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, text

from antirelou.db import UtcDateTime
from antirelou.models import Id, metadata

evidence_head = Table(
    "evidence_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("seq", BigInteger, nullable=False),  # 0 before the first record
    Column("record_hash", String(64), nullable=False),
)

# The records of an incident opening or closing: a checkpoint is due within a tick of one.
# As literal SQL, the same in the partial index as in the query, so that both databases can
# see the query's rows are all in the index.
INCIDENT_RECORD = text("kind IN ('incident_opened', 'incident_closed')")

evidence_records = Table(
    "evidence_records",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),  # 1, 2, 3... no gaps
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(24), nullable=False),
    Column("ref", String(96), nullable=False),  # "message:12", "reply:3", "incident:2"...
    Column("content_digest", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("record_hash", String(64), nullable=False),
    Column("salt", String(32), nullable=True),  # NULL once purged
    Column("content", Text, nullable=True),  # canonical JSON; NULL once purged
    Index("ix_evidence_records_ref", "ref"),
    Index("ix_evidence_records_at", "at"),
    Index(
        "ix_evidence_records_incidents",
        "seq",
        sqlite_where=INCIDENT_RECORD,
        postgresql_where=INCIDENT_RECORD,
    ),
)

evidence_checkpoints = Table(
    "evidence_checkpoints",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("seq", BigInteger, nullable=False),  # records covered: 1..seq
    Column("head_hash", String(64), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("reason", String(32), nullable=False),  # periodic | incident | export | manual
    Column("public_key", String(64), nullable=False),  # raw Ed25519 public key, hex
    Column("signature", String(128), nullable=False),  # hex, over the statement's bytes
    Column("tsa_url", Text, nullable=True),
    Column("tsa_token", Text, nullable=True),  # base64 of the DER TimeStampResp
    Column("tsa_attempts", Integer, nullable=False, default=0),
    Index("ix_evidence_checkpoints_seq", "seq"),
)
