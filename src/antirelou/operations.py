"""Operator actions, shared by the CLI and (later) the dashboard and API.

Each action runs in one transaction with its audit-log row, so what was done and who did
it can never disagree.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, update

from antirelou import alerts, budget, floods, models
from antirelou.evidence import hooks as evidence
from antirelou.money import MAX_DONATION, to_micros
from antirelou.release import cancel_held
from antirelou.service import Service

BACKUP_ACTION = "database_backup"
RESTORE_ACTION = "database_restore"


class OperationError(ValueError):
    """An action that cannot be done as asked; the message says why."""


def audit(
    conn: Connection, actor: str, action: str, target: str | None, now: datetime, **details: Any
) -> None:
    audit_id = conn.execute(
        models.audit_log.insert()
        .values(
            at=now,
            actor=actor,
            action=action,
            target=target,
            details=json.dumps(details, default=str, sort_keys=True),
        )
        .returning(models.audit_log.c.id)
    ).scalar_one()
    evidence.operator_action(conn, int(audit_id), actor, action, target, details, now)
    alerts.account_change(conn, int(audit_id), actor, action, target, details, now)


def _known_line(service: Service, number: str) -> str:
    line = service.line(number)
    if line is None:
        known = ", ".join(x.number for x in service.settings.lines)
        raise OperationError(f"no line {number} (configured: {known})")
    return line.number


def set_paused(service: Service, number: str, paused: bool, actor: str, reason: str = "") -> None:
    """The kill switch: a paused line stores every text but sends nothing at all."""
    number = _known_line(service, number)
    now = service.clock.now()
    lines = models.lines
    with service.engine.begin() as conn:
        conn.execute(
            update(lines)
            .where(lines.c.number == number)
            .values(paused=paused, paused_reason=reason or None, updated_at=now)
        )
        audit(conn, actor, "pause" if paused else "resume", number, now, reason=reason)


def open_incident(service: Service, number: str, actor: str, note: str = "") -> int:
    number = _known_line(service, number)
    now = service.clock.now()
    news = floods.IncidentNews()
    with service.engine.begin() as conn:
        signals = {"signals": ["operator"], "note": note}
        incident_id = floods.open_incident(conn, number, now, f"operator:{actor}", signals, news)
        if not news.opened:
            raise OperationError(f"incident {incident_id} is already open on {number}")
        alerts.incident_news(conn, service, news, now)
        evidence.incident_news(conn, news, now)
        audit(conn, actor, "incident_open", number, now, incident=incident_id, note=note)
    return incident_id


def close_incident(service: Service, incident_id: int, actor: str) -> None:
    now = service.clock.now()
    with service.engine.begin() as conn:
        if not floods.close_incident(conn, incident_id, now, f"operator:{actor}"):
            raise OperationError(f"incident {incident_id} is not open")
        news = floods.IncidentNews(closed=[incident_id])
        alerts.incident_news(conn, service, news, now)
        evidence.incident_news(conn, news, now)
        audit(conn, actor, "incident_close", str(incident_id), now)


def donate(service: Service, euros: float, note: str, actor: str) -> None:
    """Record a donation (a negative one corrects a mistaken entry). Every way in (CLI,
    dashboard form, API) comes through here, so the amount is checked here."""
    if not math.isfinite(euros) or abs(euros) > MAX_DONATION:
        raise OperationError(
            f"a donation is between -{MAX_DONATION:,.0f} and {MAX_DONATION:,.0f} EUR"
        )
    if euros == 0:
        raise OperationError("a donation of 0 changes nothing")
    now = service.clock.now()
    with service.engine.begin() as conn:
        budget.donate(conn, to_micros(euros), note, now, actor)
        audit(conn, actor, "donation", None, now, euros=euros, note=note)


def record_backup(service: Service, path: str, size: int, records: int, actor: str) -> None:
    """A copy of every text and number was made: who made it, and where, is kept in the audit
    log (`antirelou check` reads the last one to say how old the newest backup is)."""
    now = service.clock.now()
    with service.engine.begin() as conn:
        audit(conn, actor, BACKUP_ACTION, path, now, size=size, evidence_records=records)


def record_restore(service: Service, backup: str, kept: str, actor: str) -> None:
    """The database was put back from a backup: in the restored audit log, from then on."""
    now = service.clock.now()
    with service.engine.begin() as conn:
        audit(conn, actor, RESTORE_ACTION, backup, now, replaced_kept_at=kept)


def cancel_held_replies(service: Service, number: str | None, actor: str) -> int:
    if number:
        number = _known_line(service, number)
    now = service.clock.now()
    count = cancel_held(service, number, now, f"cancelled by {actor}")
    with service.engine.begin() as conn:
        audit(conn, actor, "cancel_held", number, now, count=count)
    return count
