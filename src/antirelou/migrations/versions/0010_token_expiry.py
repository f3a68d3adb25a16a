"""api_tokens.expires_at: API tokens that stop working on their own

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 06:00:00

Tokens made before keep working until revoked (expires_at NULL), as they did.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import antirelou.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(
            sa.Column("expires_at", antirelou.db.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
