"""Operator edits of the TOML settings (a line's reply, the caps), stored in the database.

The file stays the base; `setting_overrides` holds what operators changed from the
dashboard. `LiveSettings` keeps the base and swaps `service.settings` for base-plus-overrides
(a frozen object, swapped whole: readers see the old or the new one, never a mix). The web
app refreshes it after each edit and at most every REFRESH seconds, so every web process
picks up an edit made in another. Processes that never serve the web (a separate `antirelou
worker`, CLI commands) only see overrides if they call `LiveSettings(service).refresh()`.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from sqlalchemy import Connection, func, select

from antirelou.dbutil import dialect_insert
from antirelou.operations import OperationError
from antirelou.service import Service
from antirelou.settings import LineSettings, Settings
from antirelou.web.auth_tables import setting_overrides
from antirelou.web.reads import reader

REFRESH = 5.0  # seconds
MAX_REPLY = 1600  # ten GSM-7 segments: longer is a mistake, not a reply
DAILY_CAP, POT = "budget:daily_cap", "budget:total"


def reply_key(number: str) -> str:
    return f"line:{number}:reply"


def read_all(conn: Connection) -> dict[str, Any]:
    o = setting_overrides
    return {row.key: json.loads(row.value) for row in conn.execute(select(o.c.key, o.c.value))}


def store(conn: Connection, key: str, value: Any, actor: str, now: Any) -> None:
    statement = dialect_insert(conn, setting_overrides).values(
        key=key, value=json.dumps(value), updated_at=now, updated_by=actor
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["key"],
            set_={"value": statement.excluded.value, "updated_at": now, "updated_by": actor},
        )
    )


def remove(conn: Connection, key: str) -> None:
    conn.execute(setting_overrides.delete().where(setting_overrides.c.key == key))


def check_reply(text: str) -> str:
    text = text.strip()
    if not text:
        raise OperationError("the reply cannot be empty")
    if len(text) > MAX_REPLY:
        raise OperationError(f"the reply is longer than {MAX_REPLY} characters")
    return text


def check_cap(value: float) -> float:
    if not value >= 0 or value == float("inf"):
        raise OperationError("a cap is a positive amount of euros")
    return float(value)


def apply(base: Settings, overrides: dict[str, Any]) -> Settings:
    """The base settings with the overrides that still make sense (unknown lines skipped)."""
    lines = tuple(_line(line, overrides) for line in base.lines)
    caps: dict[str, float] = {}
    if DAILY_CAP in overrides:
        caps["daily_cap"] = float(overrides[DAILY_CAP])
    if POT in overrides:
        caps["total"] = float(overrides[POT])
    return base.model_copy(update={"lines": lines, "budget": base.budget.model_copy(update=caps)})


def _line(line: LineSettings, overrides: dict[str, Any]) -> LineSettings:
    reply = overrides.get(reply_key(line.number))
    return line if reply is None else line.model_copy(update={"reply": str(reply)})


class LiveSettings:
    """The service's settings, kept equal to the file plus the stored overrides."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.base = service.file_settings
        self._version: tuple[Any, ...] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Re-read the overrides and swap the settings if they changed."""
        with self._lock, reader(self.service).connect() as conn:
            o = setting_overrides
            version = tuple(conn.execute(select(func.count(), func.max(o.c.updated_at))).one())
            if version == self._version:
                return
            overrides = read_all(conn)
            self.service.settings = apply(self.base, overrides)
            self._version = version
        self._checked = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self._checked >= REFRESH

    def maybe_refresh(self) -> None:
        if self.due():
            self._checked = time.monotonic()
            self.refresh()
