"""status events lookups: index the delivery receipts by provider id and by reply

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 13:50:00

Every reply sent looks for receipts the provider sent before we recorded the send
(delivery.adopt_early_statuses), by the provider's message id; retention erases the receipts
of the replies it erases, by reply. Neither column had an index, so both read the whole
table, which gains a receipt or two per reply: after a year, every send read them all.
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_status_events_provider_message_id", "status_events", ["provider_message_id"]
    )
    op.create_index("ix_status_events_reply_id", "status_events", ["reply_id"])


def downgrade() -> None:
    op.drop_index("ix_status_events_reply_id", table_name="status_events")
    op.drop_index("ix_status_events_provider_message_id", table_name="status_events")
