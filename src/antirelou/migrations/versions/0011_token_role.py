"""api_tokens.role: a token that does less than its account

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 06:30:00

A token made "as viewer" by an admin reads, with numbers masked, and can do nothing else.
NULL (every token made before): the account's own role, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("role", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("role")
