"""append(): one evidence record, written in the caller's transaction.

The algorithm (design.md, invariant 7), in three prebuilt statements:

1. `SELECT seq, record_hash FROM evidence_head ... FOR UPDATE` takes the head row's lock
   (PostgreSQL) until the caller commits, so concurrent appenders queue there and seqs
   come out gapless and unique: a rolled-back transaction takes its seq back with it. On
   SQLite the caller's BEGIN IMMEDIATE already serialises writers.
2. INSERT the record: a fresh salt, content_digest = SHA-256(salt || canonical JSON),
   prev_hash = the head's hash, record_hash = SHA-256("seq|kind|ref|at|digest|prev").
3. Store the new seq and hash in the head (one row version per record on PostgreSQL;
   there, 2 and 3 are one statement, the head's UPDATE in the INSERT's WITH).

Call it as the LAST write of a transaction: the head lock is then held only for the
commit, and, being always taken last, it can never be part of a deadlock.

Every text goes through here, so the three statements run on the driver's cursor, inside
the caller's transaction, with SQL written once per database: SQLAlchemy's per-statement
work was three quarters of the cost (measured by benchmarks/evidence.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from antirelou.dbutil import sqlite_time
from antirelou.evidence import hashing
from antirelou.evidence.tables import evidence_head, evidence_records

HEAD_ID = 1
_h, _r = evidence_head, evidence_records

_BUMP = (
    update(_h)
    .where(_h.c.id == HEAD_ID)
    .values(seq=_h.c.seq + 1)
    .returning(_h.c.seq, _h.c.record_hash)
)
_INSERT = _r.insert()
_SET_HEAD = update(_h).where(_h.c.id == HEAD_ID).values(record_hash=bindparam("new_hash"))
_HEAD = select(_h.c.seq, _h.c.record_hash).where(_h.c.id == HEAD_ID)


_RECORD = (
    "INSERT INTO evidence_records (seq, at, kind, ref, content_digest, prev_hash, "
    "record_hash, salt, content) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
)
_NEW_HEAD = "UPDATE evidence_head SET seq = {p}, record_hash = {p} WHERE id = 1"
# Per database: the statement that reads (and locks) the head, then the writes, each with
# the slice of (seq, new_hash, *record) it takes.
_SQL = {
    "sqlite": (  # writers are already serialised by BEGIN IMMEDIATE
        "SELECT seq, record_hash FROM evidence_head WHERE id = 1",
        (
            (_RECORD.format(p="?"), slice(2, None)),
            (_NEW_HEAD.format(p="?"), slice(0, 2)),
        ),
    ),
    "postgresql": (  # the row lock orders appenders until they commit
        "SELECT seq, record_hash FROM evidence_head WHERE id = 1 FOR UPDATE",
        # Steps 2 and 3 in one statement (a round trip less on every text's path).
        (
            (
                f"WITH head AS ({_NEW_HEAD.format(p='%s')}) {_RECORD.format(p='%s')}",
                slice(None),
            ),
        ),
    ),
}


def append(
    conn: Connection, kind: str, ref: str, content: Mapping[str, object], now: datetime
) -> int:
    """Add one record to the chain inside the caller's transaction; returns its seq."""
    if not conn.in_transaction():
        raise RuntimeError("evidence records are appended inside the caller's transaction")
    hashing.check_kind_ref(kind, ref)
    body = hashing.canonical(content)
    salt = hashing.new_salt()
    digest = hashing.content_digest(salt, body)
    at = hashing.utc_text(now)
    dialect = conn.dialect.name
    if dialect not in _SQL:
        return _append_portable(conn, kind, ref, now, (at, digest, salt, body))
    lock_head, writes = _SQL[dialect]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(lock_head)
        last, prev_hash = cursor.fetchall()[0]
        seq = int(last) + 1
        new_hash = hashing.record_hash(seq, kind, ref, at, digest, prev_hash)
        record = (seq, _db_time(dialect, now), kind, ref, digest, prev_hash, new_hash, salt, body)
        params = (seq, new_hash, *record)
        for sql, taken in writes:
            cursor.execute(sql, params[taken])
    finally:
        cursor.close()
    return int(seq)


def _db_time(dialect: str, when: datetime) -> Any:
    """What UtcDateTime would store: naive UTC text on SQLite, an aware value elsewhere."""
    return sqlite_time(when) if dialect == "sqlite" else when.astimezone(UTC)


def _append_portable(
    conn: Connection, kind: str, ref: str, now: datetime, parts: tuple[str, str, str, str]
) -> int:
    """The same three steps through SQLAlchemy, for any other database."""
    at, digest, salt, body = parts
    seq, prev_hash = conn.execute(_BUMP).one()
    new_hash = hashing.record_hash(seq, kind, ref, at, digest, prev_hash)
    values = {"seq": seq, "at": now, "kind": kind, "ref": ref, "content_digest": digest}
    values |= {"prev_hash": prev_hash, "record_hash": new_hash, "salt": salt, "content": body}
    conn.execute(_INSERT, values)
    conn.execute(_SET_HEAD, {"new_hash": new_hash})
    return int(seq)


def head(conn: Connection) -> tuple[int, str]:
    """The last record's seq and hash (0 and the genesis hash before any record)."""
    seq, record_hash = conn.execute(_HEAD).one()
    return int(seq), str(record_hash)
