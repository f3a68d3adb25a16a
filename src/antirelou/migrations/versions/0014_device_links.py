"""trusted_devices.link_until: a link, made on the server, that trusts a new browser

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 16:35:00

During a lockout attack an operator on a new browser could not log in until the attack
stopped (the account's failures lock every browser not trusted for it). An admin on the
server makes a single-use link (`antirelou users trust-link EMAIL`); opening it makes that
browser trusted for the account. Until it is used, the row is a link, not a browser: it
expires at `link_until` and no attempt counts as coming from it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import antirelou.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trusted_devices") as batch:
        batch.add_column(sa.Column("link_until", antirelou.db.UtcDateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("trusted_devices") as batch:
        batch.drop_column("link_until")
