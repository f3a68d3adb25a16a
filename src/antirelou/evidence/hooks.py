"""What each part of the service records, built in one place: the lead's modules call
these with what they already have, as the last writes of their transactions.

Money is put in as integer micro-euros and times as UTC datetimes, so the canonical JSON
never depends on float formatting.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from antirelou import models
from antirelou.evidence.chain import append


def inbound(
    conn: Connection,
    sms: Any,
    message_id: int,
    decision: Any,
    incident_id: int | None,
    now: datetime,
    signals: Sequence[str] = (),
) -> int:
    """A text as received (an `InboundSms`) and what was decided about it."""
    content = {
        "message": message_id,
        "provider": sms.provider,
        "provider_id": sms.provider_id,
        "sender": sms.sender,
        "recipient": sms.recipient,
        "body": sms.body,
        "num_media": sms.num_media,
        "received_at": now,
        "raw": dict(sms.raw),
        "signature_checked": bool(sms.signature_checked),
        "decision": decision.action.value,
        "reasons": [reason.value for reason in decision.reasons],
        "signals": list(signals),
        "incident": incident_id,
    }
    return append(conn, "inbound", f"message:{message_id}", content, now)


def reply_sent(
    conn: Connection,
    reply: Any,
    provider_message_id: str,
    cost_micros: int,
    now: datetime,
) -> int:
    """A reply the provider accepted (a `ClaimedReply`), with its id and price."""
    content = {
        "reply": reply.id,
        "line": reply.line,
        "to": reply.recipient,
        "body": reply.body,
        "provider_message_id": provider_message_id,
        "sent_at": now,
        "cost_micros": int(cost_micros),
        "attempts": reply.attempts,
    }
    return append(conn, "reply", f"reply:{reply.id}", content, now)


def call(
    conn: Connection,
    call: Any,
    call_row_id: int,
    decision: Any,
    incident_id: int | None,
    cost_micros: int,
    now: datetime,
) -> int:
    """A voice call (an `IncomingCall`) and whether it was answered or rejected."""
    content = {
        "call": call_row_id,
        "provider": call.provider,
        "call_id": call.call_id,
        "caller": call.caller,
        "line": call.line,
        "received_at": now,
        "raw": dict(call.raw),
        "answered": bool(decision.answer),
        "reasons": list(decision.reasons),
        "incident": incident_id,
        "cost_micros": int(cost_micros),
    }
    return append(conn, "call", f"call:{call_row_id}", content, now)


def incident_news(conn: Connection, news: Any, now: datetime) -> None:
    """One record per incident this transaction opened or closed (a `floods.IncidentNews`)."""
    for incident_id in news.opened:
        _incident(conn, "incident_opened", incident_id, now)
    for incident_id in news.closed:
        _incident(conn, "incident_closed", incident_id, now)


def incidents(
    conn: Connection, opened: Iterable[int], closed: Iterable[int], now: datetime
) -> None:
    for incident_id in opened:
        _incident(conn, "incident_opened", incident_id, now)
    for incident_id in closed:
        _incident(conn, "incident_closed", incident_id, now)


def _incident(conn: Connection, kind: str, incident_id: int, now: datetime) -> None:
    i = models.incidents
    row = conn.execute(select(i).where(i.c.id == incident_id)).one()
    content = {
        "incident": incident_id,
        "line": row.line,
        "opened_at": row.opened_at,
        "opened_by": row.opened_by,
        "closed_at": row.closed_at,
        "closed_by": row.closed_by,
        "signals": json.loads(row.signals),
    }
    append(conn, kind, f"incident:{incident_id}", content, now)


def operator_action(
    conn: Connection,
    audit_id: int,
    actor: str,
    action: str,
    target: str | None,
    details: Mapping[str, Any],
    now: datetime,
) -> int:
    """An operator's action, as written to the audit log (`operations.audit`)."""
    content = {
        "audit": audit_id,
        "actor": actor,
        "action": action,
        "target": target,
        "details": json.loads(json.dumps(details, default=str, sort_keys=True)),
        "at": now,
    }
    return append(conn, "operator_action", f"audit:{audit_id}", content, now)
