"""Signed checkpoints: "the chain had N records ending in hash H at time T", signed.

Taken by the worker's tick (`maybe_checkpoint`) every `checkpoint_every` while the chain
grows, within a tick of any incident opening or closing, and by exports. The statement
is signed with the instance's Ed25519 key; then, with no transaction open, it is sent to
the timestamp authority if one is configured (failed stamps are retried on later ticks).
A checkpoint fixes everything before it: rewriting any earlier record changes the head
hash the signature covers.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from antirelou.dbutil import db_time, driver_execute
from antirelou.evidence import keys, timestamps
from antirelou.evidence.chain import HEAD_ID, head
from antirelou.evidence.hashing import statement
from antirelou.evidence.settings import EvidenceSettings, evidence_settings
from antirelou.evidence.tables import (
    INCIDENT_RECORD,
    evidence_checkpoints,
    evidence_head,
    evidence_records,
)
from antirelou.service import Service

log = logging.getLogger(__name__)
_c, _r = evidence_checkpoints, evidence_records


@dataclass(frozen=True)
class Checkpoint:
    id: int
    seq: int
    head_hash: str
    at: datetime
    reason: str
    public_key: str
    signature: str
    tsa_token: str | None

    @property
    def statement(self) -> bytes:
        return statement(self.seq, self.head_hash, self.at)

    @classmethod
    def of(cls, row: Any) -> Checkpoint:
        return cls(
            int(row.id),
            int(row.seq),
            row.head_hash,
            row.at,
            row.reason,
            row.public_key,
            row.signature,
            row.tsa_token,
        )


_COLUMNS = (
    _c.c.id,
    _c.c.seq,
    _c.c.head_hash,
    _c.c.at,
    _c.c.reason,
    _c.c.public_key,
    _c.c.signature,
    _c.c.tsa_token,
)
_LATEST = select(*_COLUMNS).order_by(_c.c.seq.desc(), _c.c.id.desc()).limit(1)
_LAST_MARK = select(_c.c.seq, _c.c.at).order_by(_c.c.seq.desc(), _c.c.id.desc()).limit(1)
_HEAD_SEQ = select(evidence_head.c.seq).where(evidence_head.c.id == HEAD_ID)
# On the partial index of incident records: the records since the last checkpoint (every
# text's, in a raid) are not walked through on every tick.
_INCIDENT_SINCE = select(_r.c.seq).where(_r.c.seq > bindparam("after"), INCIDENT_RECORD).limit(1)


_INSERT = _c.insert().returning(*_COLUMNS)  # built once: a replay takes thousands


def take(service: Service, reason: str, now: datetime | None = None) -> Checkpoint:
    """Sign the chain's current head now (and timestamp it, if configured)."""
    config = evidence_settings(service.settings)
    key = keys.load_or_create(config.key_path)
    when = now or service.clock.now()
    with service.engine.begin() as conn:
        seq, head_hash = head(conn)
        signature = key.sign(statement(seq, head_hash, when)).hex()
        values = {
            "seq": seq,
            "head_hash": head_hash,
            "at": when,
            "reason": reason,
            "public_key": keys.public_raw(key).hex(),
            "signature": signature,
            "tsa_url": config.tsa_url or None,
            "tsa_attempts": 0,
        }
        row = conn.execute(_INSERT, values).one()
    checkpoint = Checkpoint.of(row)
    if config.tsa_url:
        return stamp(service, checkpoint, config) or checkpoint
    return checkpoint


def latest(conn: Connection) -> Checkpoint | None:
    row = conn.execute(_LATEST).first()
    return None if row is None else Checkpoint.of(row)


def maybe_checkpoint(service: Service, now: datetime) -> Checkpoint | None:
    """The worker tick's hook: checkpoint if the chain grew and one is due; retry stamps."""
    config = evidence_settings(service.settings)
    reason = _due(service, now, config)
    if reason:
        return take(service, reason, now)
    if config.tsa_url:
        stamp_pending(service, config)  # a quiet tick: retry the stamps that failed
    return None


def _due(service: Service, now: datetime, config: EvidenceSettings) -> str | None:
    """Runs on every tick: three indexed lookups on the driver's cursor."""
    with service.engine.connect() as conn:
        seq = int(driver_execute(conn, _HEAD_SEQ, {}).scalar())
        last = driver_execute(conn, _LAST_MARK, {}).rows
        last_seq, last_at = (int(last[0][0]), db_time(last[0][1])) if last else (0, None)
        if seq == 0 or last_seq >= seq:
            return None
        if driver_execute(conn, _INCIDENT_SINCE, {"after": last_seq}).rows:
            return "incident"
    if last_at is None or now - last_at >= config.checkpoint_every:
        return "periodic"
    return None


def stamp(service: Service, checkpoint: Checkpoint, config: EvidenceSettings) -> Checkpoint | None:
    """Timestamp one checkpoint (no transaction open during the call); None on failure."""
    try:
        token = timestamps.request(checkpoint.statement, config.tsa_url, config.tsa_timeout)
    except timestamps.TimestampError as exc:
        log.warning("checkpoint %s not timestamped yet: %s", checkpoint.id, exc)
        _count_attempt(service, checkpoint.id, None)
        return None
    encoded = base64.b64encode(token).decode()
    _count_attempt(service, checkpoint.id, encoded)
    return replace(checkpoint, tsa_token=encoded)


def _count_attempt(service: Service, checkpoint_id: int, token: str | None) -> None:
    values: dict[str, Any] = {"tsa_attempts": _c.c.tsa_attempts + 1}
    if token is not None:
        values["tsa_token"] = token
    with service.engine.begin() as conn:
        conn.execute(update(_c).where(_c.c.id == checkpoint_id).values(**values))


def stamp_pending(service: Service, config: EvidenceSettings, limit: int = 3) -> int:
    """Retry the timestamps that failed (a few per tick, newest first)."""
    query = (
        select(*_COLUMNS)
        .where(
            _c.c.tsa_token.is_(None),
            _c.c.tsa_url.is_not(None),
            _c.c.tsa_attempts < config.tsa_attempts,
        )
        .order_by(_c.c.id.desc())
        .limit(limit)
    )
    with service.engine.connect() as conn:
        pending = [Checkpoint.of(row) for row in conn.execute(query)]
    return sum(stamp(service, checkpoint, config) is not None for checkpoint in pending)


def covering(conn: Connection, seq: int) -> Checkpoint | None:
    """The first checkpoint that covers record `seq` (None if none does yet)."""
    query = select(*_COLUMNS).where(_c.c.seq >= seq).order_by(_c.c.seq, _c.c.id).limit(1)
    row = conn.execute(query).first()
    return None if row is None else Checkpoint.of(row)


def decode_token(checkpoint: Checkpoint) -> bytes | None:
    return None if checkpoint.tsa_token is None else base64.b64decode(checkpoint.tsa_token)
