"""provider_balances: the money on each provider's account, as the worker last asked it

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 19:40:00

The pot in antirelou's books is what the collective means to spend; what a raid drains is
the provider's account. The worker asks each provider for its balance every
[budget] provider_balance_every and keeps the last answer here, for the dashboard and for
an alert when it falls under a floor.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import antirelou.db

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_balances",
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("amount_micros", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(8), nullable=True),
        sa.Column("asked_at", antirelou.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_at", antirelou.db.UtcDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("provider_balances")
