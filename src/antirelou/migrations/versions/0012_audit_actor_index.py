"""audit_log: index (actor, action, at) for an account's recent logins

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 13:40:00

Each login reads where the account logged in from lately (web/places.py); without this
index that read scans the whole audit log, which only grows.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_log_actor_action_at", "audit_log", ["actor", "action", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_actor_action_at", table_name="audit_log")
