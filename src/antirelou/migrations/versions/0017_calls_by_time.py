"""calls by time: an index to count a line's calls in the last minute

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 11:30:00

Every call now asks how many calls reached its line in the last minute (a flood of calls
alerts the operators, voice.py); without this index that read would go through all of the
line's calls.
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_calls_line_received", "calls", ["line", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_calls_line_received", table_name="calls")
