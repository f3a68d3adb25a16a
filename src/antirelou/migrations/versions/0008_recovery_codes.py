"""recovery_codes: one-time codes that stand in for a lost phone's second factor

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 00:30:00

`antirelou users totp enable EMAIL` now also prints ten recovery codes; each logs in once in
place of the app's code (web/totp.py). Only their SHA-256 digests are stored. Existing
accounts with a second factor have none until `antirelou users totp codes EMAIL`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import antirelou.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = antirelou.db.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "recovery_codes",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_recovery_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "code_hash", name=op.f("pk_recovery_codes")),
    )


def downgrade() -> None:
    op.drop_table("recovery_codes")
