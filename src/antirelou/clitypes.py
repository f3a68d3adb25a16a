"""Click parameter types shared by the command groups (cli.py, evidence/cli.py)."""

from __future__ import annotations

import click

# A row id: what the database can hold (a BIGINT on PostgreSQL, a 64-bit INTEGER on SQLite).
# A plain int would let `incidents close 99999999999999999999` reach the driver and end in an
# OverflowError traceback instead of a usage error.
ROW_ID = click.IntRange(1, 2**63 - 1)
