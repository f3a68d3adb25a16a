"""evidence: the hash chain, its head and its signed checkpoints

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import antirelou.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

WHEN = antirelou.db.UtcDateTime(timezone=True)
GENESIS = "0" * 64


def upgrade() -> None:
    head = op.create_table(
        "evidence_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_head")),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "record_hash": GENESIS}])
    op.create_table(
        "evidence_records",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("ref", sa.String(length=96), nullable=False),
        sa.Column("content_digest", sa.String(length=64), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column("salt", sa.String(length=32), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_evidence_records")),
    )
    with op.batch_alter_table("evidence_records", schema=None) as batch_op:
        batch_op.create_index("ix_evidence_records_ref", ["ref"], unique=False)
        batch_op.create_index("ix_evidence_records_at", ["at"], unique=False)
    op.create_table(
        "evidence_checkpoints",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("tsa_url", sa.Text(), nullable=True),
        sa.Column("tsa_token", sa.Text(), nullable=True),
        sa.Column("tsa_attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_checkpoints")),
    )
    with op.batch_alter_table("evidence_checkpoints", schema=None) as batch_op:
        batch_op.create_index("ix_evidence_checkpoints_seq", ["seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("evidence_checkpoints", schema=None) as batch_op:
        batch_op.drop_index("ix_evidence_checkpoints_seq")
    op.drop_table("evidence_checkpoints")
    with op.batch_alter_table("evidence_records", schema=None) as batch_op:
        batch_op.drop_index("ix_evidence_records_at")
        batch_op.drop_index("ix_evidence_records_ref")
    op.drop_table("evidence_records")
    op.drop_table("evidence_head")
