"""users.totp_secret: room for a sealed secret

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 03:00:00

Second-factor secrets are now sealed with a key kept outside the database (web/sealing.py):
`aes1:` and 80 base64 characters, against 32 for a plain base32 secret. The secrets stored
before stay plain here (a migration has no key); `serve` and `worker` seal them at start.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column(
            "totp_secret", type_=sa.String(length=160), existing_type=sa.String(length=64)
        )


def downgrade() -> None:
    # A sealed secret does not fit back: the accounts would lose their second factor
    # silently. Downgrading past here needs `antirelou users totp disable` for each first.
    with op.batch_alter_table("users") as batch:
        batch.alter_column(
            "totp_secret", type_=sa.String(length=64), existing_type=sa.String(length=160)
        )
