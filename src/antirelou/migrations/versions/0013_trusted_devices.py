"""trusted_devices: browsers an account logged in from, spared its lockout

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 13:45:00

Five failed logins locked an account for 15 minutes, from anywhere: a raid that knows an
operator's address could keep her out of the dashboard exactly when she needs it. A browser
that logged in gets a device cookie (web/devices.py); only its SHA-256 digest is stored
here, and the account's lockout does not apply to it (its own failures lock it alone).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import antirelou.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = antirelou.db.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "trusted_devices",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("last_used_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_trusted_devices_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_trusted_devices")),
    )
    op.create_index("ix_trusted_devices_user", "trusted_devices", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_trusted_devices_user", table_name="trusted_devices")
    op.drop_table("trusted_devices")
