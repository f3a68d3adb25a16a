"""users: a second factor (TOTP secret and the last accepted time step)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 18:00:00

Dashboard accounts may require a six-digit code from an authenticator app besides the
password (web/totp.py). Both columns are empty for existing accounts: nothing changes for
them until `antirelou users totp enable EMAIL`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_secret", sa.String(64), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_secret")
