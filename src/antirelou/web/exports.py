"""Evidence bundles from the dashboard: a sender's or an incident's texts as received.

Each text carries the provider's raw parameters and a SHA-256 digest of them, so a copy
handed to the police can be checked against the database later. This is the dashboard's
own export; when the evidence package (hash chain, signed checkpoints) is installed, its
bundle should replace this one. Every export is audited: it is personal data leaving.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from fastapi.responses import Response
from sqlalchemy import select

from antirelou import models
from antirelou.operations import audit
from antirelou.service import Service
from antirelou.web.reads import reader

m = models.messages
LIMIT = 100_000


def _texts(service: Service, *where: Any) -> list[dict[str, Any]]:
    query = select(m).where(*where).order_by(m.c.id).limit(LIMIT)
    with reader(service).connect() as conn:
        return [_text(row) for row in conn.execute(query)]


def _text(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "provider": row.provider,
        "provider_id": row.provider_id,
        "line": row.line,
        "sender": row.sender,
        "received_at": row.received_at.isoformat(),
        "body": row.body,
        "raw": json.loads(row.raw),
        "raw_sha256": hashlib.sha256(row.raw.encode()).hexdigest(),
        "signature_checked": row.signature_checked,
        "decision": row.decision,
        "reasons": json.loads(row.reasons),
        "signals": json.loads(row.signals or "[]"),
        "incident_id": row.incident_id,
    }


def _bundle(
    service: Service, kind: str, subject: Any, texts: list[dict[str, Any]]
) -> dict[str, Any]:
    made: datetime = service.clock.now()
    return {"kind": kind, "subject": subject, "made_at": made.isoformat(), "texts": texts}


def sender_bundle(service: Service, line: str, number: str, actor: str) -> dict[str, Any]:
    texts = _texts(service, m.c.line == line, m.c.sender == number)
    with service.engine.begin() as conn:
        audit(conn, actor, "evidence_export", number, service.clock.now(), texts=len(texts))
    return _bundle(service, "sender", {"line": line, "number": number}, texts)


def incident_bundle(service: Service, incident_id: int, actor: str) -> dict[str, Any] | None:
    i = models.incidents
    with reader(service).connect() as conn:
        row = conn.execute(select(i).where(i.c.id == incident_id)).first()
    if row is None:
        return None
    texts = _texts(service, m.c.incident_id == incident_id)
    subject = {
        "incident": incident_id,
        "line": row.line,
        "opened_at": row.opened_at.isoformat(),
        "closed_at": row.closed_at.isoformat() if row.closed_at else None,
        "signals": json.loads(row.signals),
    }
    with service.engine.begin() as conn:
        target = f"incident:{incident_id}"
        audit(conn, actor, "evidence_export", target, service.clock.now(), texts=len(texts))
    return _bundle(service, "incident", subject, texts)


def download(bundle: dict[str, Any], filename: str) -> Response:
    body = json.dumps(bundle, ensure_ascii=False, indent=1)
    headers = {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    }
    return Response(body, media_type="application/json", headers=headers)
