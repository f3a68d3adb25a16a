"""inbox: texts accepted by a web process, waiting for the worker to decide them

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 11:40:00

With `[web] intake = "queued"` a webhook only parks the text here (one short insert) and
the worker decides it, in another process: the web process's CPU goes to HTTP alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import antirelou.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("provider_id", sa.String(64), nullable=False),
        sa.Column("received_at", antirelou.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("sms", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox")),
        sa.UniqueConstraint("provider", "provider_id", name="uq_inbox_provider_id"),
    )


def downgrade() -> None:
    op.drop_table("inbox")
