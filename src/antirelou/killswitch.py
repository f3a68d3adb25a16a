"""The kill switch's state, as every part reads it: `antirelou lines pause` sets
`lines.paused` (operations.set_paused); a paused line stores texts and answers nothing."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, select

from antirelou import models
from antirelou.dbutil import driver_execute

_PAUSED = select(models.lines.c.paused).where(models.lines.c.number == bindparam("line"))
# The same, as a column another statement reads along (inbound reads it with the budget).
PAUSED_COLUMN = _PAUSED.scalar_subquery()


def line_paused(conn: Connection, number: str) -> bool:
    """Whether the line is paused now (on every text's path: the driver's cursor)."""
    return bool(driver_execute(conn, _PAUSED, {"line": number}).scalar())
