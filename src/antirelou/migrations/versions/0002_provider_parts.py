"""inbound parts: long texts delivered one part at a time (Vonage), kept until whole

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import antirelou.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_parts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("part_id", sa.String(length=64), nullable=False),
        sa.Column("group_key", sa.String(length=160), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("received_at", antirelou.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("assembled_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_parts")),
        sa.UniqueConstraint("provider", "part_id", name="uq_inbound_parts_part_id"),
    )
    with op.batch_alter_table("inbound_parts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbound_parts_group", ["provider", "group_key", "assembled_id"], unique=False
        )
        batch_op.create_index("ix_inbound_parts_assembled", ["assembled_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inbound_parts", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_parts_assembled")
        batch_op.drop_index("ix_inbound_parts_group")
    op.drop_table("inbound_parts")
