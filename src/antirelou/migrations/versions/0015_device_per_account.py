"""trusted_devices: one browser trusted for several accounts

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 17:05:00

A collective's shared laptop logs in to several operators' accounts. The token's digest was
the key, so a browser was trusted for one account at a time: the last one that logged in,
the others strangers again on it (and locked out by a raid). The key becomes (token_hash,
user_id): the same cookie, one row per account it proved itself for. Recreated on both
databases (SQLite cannot change a primary key in place); the rows are kept.
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trusted_devices", recreate="always") as batch:
        batch.drop_constraint("pk_trusted_devices", type_="primary")
        batch.create_primary_key("pk_trusted_devices", ["token_hash", "user_id"])


def downgrade() -> None:
    op.execute(  # a browser trusted for several accounts keeps one of them
        "DELETE FROM trusted_devices WHERE user_id NOT IN"
        " (SELECT min(user_id) FROM trusted_devices AS t"
        " WHERE t.token_hash = trusted_devices.token_hash)"
    )
    with op.batch_alter_table("trusted_devices", recreate="always") as batch:
        batch.drop_constraint("pk_trusted_devices", type_="primary")
        batch.create_primary_key("pk_trusted_devices", ["token_hash"])
