"""incident records index: the records of an incident opening or closing, by seq

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 16:40:00

Every worker tick (15 s) asks whether an incident opened or closed since the last evidence
checkpoint (a checkpoint is then due at once). That read walked every record since the
checkpoint, one per text: hundreds in a raid, on every tick. A partial index holds the
incident records only, so no other record costs a write more.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# As in evidence/tables.py, where the query that uses it is written with the same text.
_INCIDENT_RECORD = text("kind IN ('incident_opened', 'incident_closed')")


def upgrade() -> None:
    op.create_index(
        "ix_evidence_records_incidents",
        "evidence_records",
        ["seq"],
        sqlite_where=_INCIDENT_RECORD,
        postgresql_where=_INCIDENT_RECORD,
    )


def downgrade() -> None:
    op.drop_index("ix_evidence_records_incidents", table_name="evidence_records")
