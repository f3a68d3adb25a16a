"""replies: index (line, released_at) for the release pace

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 06:40:00

The worker sums what each line released in the last hour on every tick while replies are
held (release.py, `_released_spend`); without this index that read scans every reply the
line ever had, every 15 seconds, during an incident.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_replies_line_released", "replies", ["line", "released_at"])


def downgrade() -> None:
    op.drop_index("ix_replies_line_released", table_name="replies")
