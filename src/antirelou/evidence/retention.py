"""Retention: forget personal data that no complaint needs, keep the proof and the counts.

After `retention_texts` (30 days), a text's body, raw parameters and sender number are
erased, with the number its reply went to and the evidence content (and salt) of both,
unless the sender is under a legal hold or tied to a kept incident: one that is open,
under a legal hold, or closed less than `retention_incidents` ago. Calls likewise. After
`retention_senders` (90 days) the dedup state goes too: sender rows (except opt-outs and
blocks, which must hold) and copy-paste fingerprints.

What stays: message rows without personal fields (time, line, decision, reasons, signals,
incident), traffic counters, the ledger, incidents. Every purge appends a `retention`
record listing the seqs whose content it erased, so `verify` can tell a purge from a
deletion, and the chain still verifies since it only ever hashed digests.

Operators and strangers are people too: after `retention_addresses` (180 days) the IP
addresses (and networks) in the audit log go (logins, refused logins, links used), with the
evidence content of those audit entries and the addresses quoted by the alerts sent about
them. What the audit row keeps: who, what, when.
"""

from __future__ import annotations

import functools
import json
import logging
import weakref
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    exists,
    or_,
    select,
    update,
)

from antirelou import models
from antirelou.evidence.chain import append
from antirelou.evidence.hashing import ranges_text
from antirelou.evidence.settings import EvidenceSettings, evidence_settings
from antirelou.evidence.tables import evidence_records
from antirelou.service import Service
from antirelou.web.auth_tables import sender_holds

log = logging.getLogger(__name__)
DAILY = timedelta(days=1)
m, r, c, i = models.messages, models.replies, models.calls, models.incidents
# Per engine, forgotten with it: an id() could be reused by a later engine, which would then
# wrongly look as if it had run retention already.
_last_runs: weakref.WeakKeyDictionary[Engine, datetime] = weakref.WeakKeyDictionary()


@dataclass
class Purge:
    """What one retention run erased."""

    messages: int = 0
    replies: int = 0
    calls: int = 0
    records: int = 0
    senders: int = 0
    fingerprints: int = 0
    addresses: int = 0  # audit entries whose addresses were erased

    def __iadd__(self, other: Purge) -> Purge:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def describe(self) -> str:
        return ", ".join(f"{getattr(self, f.name)} {f.name}" for f in fields(self))


def _kept_incident(incidents_before: Any) -> ColumnElement[bool]:
    return or_(i.c.legal_hold.is_(True), i.c.closed_at.is_(None), i.c.closed_at >= incidents_before)


def _protected(line: Any, number: Any) -> ColumnElement[bool]:
    """This (line, number) is under a legal hold or tied to a kept incident."""
    h, other = sender_holds, m.alias("tied")
    held = exists().where(h.c.line == line, h.c.number == number)
    tied = exists().where(
        other.c.line == line,
        other.c.sender == number,
        other.c.incident_id == i.c.id,
        _kept_incident(bindparam("incidents_before")),
    )
    return or_(held, tied)


@functools.cache
def _statements() -> dict[str, Any]:
    before: Any = bindparam("before")
    limit: Any = bindparam("limit")
    ids: Any = bindparam("ids", expanding=True)
    return {
        "messages": select(m.c.id)
        .where(m.c.received_at < before, m.c.sender != "", ~_protected(m.c.line, m.c.sender))
        .order_by(m.c.id)
        .limit(limit),
        "calls": select(c.c.id)
        .where(c.c.received_at < before, c.c.caller != "", ~_protected(c.c.line, c.c.caller))
        .order_by(c.c.id)
        .limit(limit),
        "erase_messages": update(m)
        .where(m.c.id.in_(ids), m.c.sender != "")
        .values(body="", raw="{}", sender=""),
        "replies_of": select(r.c.id).where(r.c.message_id.in_(ids)),
        "erase_replies": update(r).where(r.c.id.in_(ids)).values(recipient=""),
        "erase_statuses": update(models.status_events)
        .where(models.status_events.c.reply_id.in_(ids))
        .values(raw="{}"),
        "erase_calls": update(c).where(c.c.id.in_(ids)).values(caller="", raw="{}"),
        "erase_content": update(evidence_records)
        .where(evidence_records.c.ref.in_(bindparam("refs", expanding=True)))
        .where(evidence_records.c.content.is_not(None))
        .values(content=None, salt=None)
        .returning(evidence_records.c.seq),
    }


def run(service: Service, now: datetime | None = None) -> Purge:
    """Purge everything past retention, in batches (each its own short transaction)."""
    config = evidence_settings(service.settings)
    when = now or service.clock.now()
    total = Purge()
    while True:
        with service.engine.begin() as conn:
            done = _purge_batch(conn, config, when)
        total += done
        if done.messages + done.calls < config.retention_batch:
            break
    while True:
        with service.engine.begin() as conn:
            done = _purge_addresses(conn, config, when)
        total += done
        if done.addresses < config.retention_batch:
            break
    total += _purge_dedup_state(service, config, when)
    _last_runs[service.engine] = when
    if total.records or total.senders or total.addresses:
        log.info("retention: %s", total.describe())
    return total


def maybe_run(service: Service, now: datetime) -> Purge | None:
    """The worker tick's hook: run retention once a day (per process)."""
    last = _last_runs.get(service.engine)
    if last is not None and now - last < DAILY:
        return None
    return run(service, now)


def _purge_batch(conn: Connection, config: EvidenceSettings, now: datetime) -> Purge:
    statements = _statements()
    before = now - config.retention_texts
    params: dict[str, Any] = {
        "before": before,
        "incidents_before": now - config.retention_incidents,
        "limit": config.retention_batch,
    }
    message_ids = list(conn.execute(statements["messages"], params).scalars())
    call_ids = list(conn.execute(statements["calls"], params).scalars())
    if not message_ids and not call_ids:
        return Purge()
    reply_ids = _erase_messages(conn, message_ids)
    if call_ids:
        conn.execute(statements["erase_calls"], {"ids": call_ids})
    refs = [f"message:{n}" for n in message_ids] + [f"reply:{n}" for n in reply_ids]
    refs += [f"call:{n}" for n in call_ids]
    seqs = list(conn.execute(statements["erase_content"], {"refs": refs}).scalars())
    purge = Purge(len(message_ids), len(reply_ids), len(call_ids), len(seqs))
    _record(conn, purge, seqs, before, now)
    return purge


def _erase_messages(conn: Connection, message_ids: list[int]) -> list[int]:
    if not message_ids:
        return []
    statements = _statements()
    reply_ids = list(conn.execute(statements["replies_of"], {"ids": message_ids}).scalars())
    conn.execute(statements["erase_messages"], {"ids": message_ids})
    if reply_ids:
        conn.execute(statements["erase_replies"], {"ids": reply_ids})
        conn.execute(statements["erase_statuses"], {"ids": reply_ids})
    return reply_ids


def _record(
    conn: Connection, purge: Purge, seqs: list[int], before: datetime, now: datetime
) -> None:
    """The retention record: which contents were erased, so verify knows it was us."""
    content: dict[str, Any] = {"before": before, "purged": ranges_text(seqs)}
    content["records"] = len(seqs)
    if purge.addresses:  # _purge_addresses
        content["audit_addresses"] = purge.addresses
    else:
        content |= {"messages": purge.messages, "replies": purge.replies, "calls": purge.calls}
    append(conn, "retention", f"retention:{now.strftime('%Y%m%dT%H%M%S%f')}", content, now)


def _purge_dedup_state(service: Service, config: EvidenceSettings, now: datetime) -> Purge:
    s, keys = models.senders, models.text_keys
    before = now - config.retention_senders
    stale = and_(
        s.c.last_seen < before,
        s.c.opted_out_at.is_(None),  # an opt-out must outlive retention
        or_(s.c.blocked_until.is_(None), s.c.blocked_until < now),
        ~_protected(s.c.line, s.c.number),
    )
    params = {"incidents_before": now - config.retention_incidents}
    with service.engine.begin() as conn:
        senders = conn.execute(delete(s).where(stale), params).rowcount
        fingerprints = conn.execute(delete(keys).where(keys.c.first_at < before)).rowcount
    return Purge(senders=senders, fingerprints=fingerprints)


ADDRESS_KEYS = ("address", "network")
_audit, _alerts = models.audit_log, models.alerts
# json.dumps writes a key so; a value that says "address" does not match (a comma or a
# brace follows it, and a quote inside a value is escaped), so every row matched changes.
_HAS_ADDRESS = '%"address": %'


def _purge_addresses(conn: Connection, config: EvidenceSettings, now: datetime) -> Purge:
    """One batch of audit entries older than retention_addresses that hold an address:
    the address goes from the row, from the alerts that quoted it, and the entry's
    evidence content goes (its digest stays in the chain)."""
    before = now - config.retention_addresses
    rows = conn.execute(
        select(_audit.c.id, _audit.c.details)
        .where(_audit.c.at < before, _audit.c.details.like(_HAS_ADDRESS))
        .order_by(_audit.c.id)
        .limit(config.retention_batch)
    ).all()
    if not rows:
        return Purge()
    conn.execute(
        update(_audit).where(_audit.c.id == bindparam("audit_id")),
        [{"audit_id": row.id, "details": _without_address(row.details)} for row in rows],
    )
    refs = [f"audit:{row.id}" for row in rows]
    _scrub_alerts(conn, refs)
    seqs = list(conn.execute(_statements()["erase_content"], {"refs": refs}).scalars())
    purge = Purge(records=len(seqs), addresses=len(rows))
    _record(conn, purge, seqs, before, now)
    return purge


def _scrub_alerts(conn: Connection, refs: list[str]) -> None:
    """The alerts sent about these audit entries (their dedupe key is the entry's ref)."""
    quoted = select(_alerts.c.id, _alerts.c.payload).where(_alerts.c.dedupe_key.in_(refs))
    changes = []
    for alert in conn.execute(quoted.where(_alerts.c.payload.like(_HAS_ADDRESS))):
        changes.append({"alert_id": alert.id, "payload": _without_address(alert.payload)})
    if changes:
        statement = update(_alerts).where(_alerts.c.id == bindparam("alert_id"))
        conn.execute(statement, changes)


def _without_address(details: str) -> str:
    return json.dumps(_strip(json.loads(details)), default=str, sort_keys=True)


def _strip(value: Any) -> Any:
    """`value` without ADDRESS_KEYS, at any depth."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in ADDRESS_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value
