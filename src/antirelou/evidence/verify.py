"""`antirelou evidence verify`: check the whole log in the database.

One streaming pass in seq order checks the chain (integrity.walk), each record's content
against its digest, and collects the records whose content is gone; then the content
that is gone must be listed by a retention record, the head row must agree with the last
record, and every checkpoint must carry a valid signature (and timestamp) over a head
hash that the chain still has.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from sqlalchemy import Connection, bindparam, select

from antirelou.evidence import keys, timestamps
from antirelou.evidence.chain import head
from antirelou.evidence.checkpoints import Checkpoint, decode_token
from antirelou.evidence.hashing import ChainRow, content_digest, parse_ranges, utc_text
from antirelou.evidence.integrity import Problem, Walk, walk
from antirelou.evidence.settings import EvidenceSettings, evidence_settings
from antirelou.evidence.tables import evidence_checkpoints, evidence_records
from antirelou.service import Service

_r, _c = evidence_records, evidence_checkpoints
BATCH = 5000


@dataclass
class Report:
    """The outcome of a verification: problems (first broken record first) and notes."""

    records: int = 0
    checkpoints: int = 0
    stamped: int = 0
    purged: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        ordered = sorted(self.problems, key=lambda p: (p.seq is None, p.seq or 0))
        return ordered[0] if ordered else None

    def add(self, problem: Problem | None) -> None:
        if problem is not None:
            self.problems.append(problem)


@dataclass
class _Contents:
    """What the pass over the records learns about their content."""

    first_bad: Problem | None = None
    missing: list[int] = field(default_factory=list)
    purged: list[tuple[int, int]] = field(default_factory=list)

    def check(self, row: Any) -> None:
        if row.content is None or row.salt is None:
            self.missing.append(int(row.seq))
            return
        if content_digest(row.salt, row.content) != row.content_digest:
            if self.first_bad is None:
                detail = "its content was changed: it no longer matches its digest"
                self.first_bad = Problem("changed", detail, int(row.seq))
        elif row.kind == "retention":
            self.purged += parse_ranges(json.loads(row.content).get("purged", ""))


_ROWS = select(
    _r.c.seq,
    _r.c.at,
    _r.c.kind,
    _r.c.ref,
    _r.c.content_digest,
    _r.c.prev_hash,
    _r.c.record_hash,
    _r.c.salt,
    _r.c.content,
).order_by(_r.c.seq)
_BY_HASH = select(_r.c.seq).where(_r.c.record_hash == bindparam("h")).limit(1)
_CHECKPOINTS = select(_c).order_by(_c.c.seq, _c.c.id)


def verify_database(service: Service) -> Report:
    """Check the whole evidence log; the report names the first broken record."""
    with service.engine.connect() as conn:
        return verify_connection(conn, evidence_settings(service.settings))


def verify_connection(conn: Connection, config: EvidenceSettings) -> Report:
    """verify_database() on what `conn` sees (a backup checks the snapshot it copies)."""
    report = Report()
    contents = _Contents()
    checkpoints = [Checkpoint.of(row) for row in conn.execute(_CHECKPOINTS)]
    wanted = {c.seq for c in checkpoints}
    rows = _chain_rows(conn, contents)
    try:
        state = walk(rows, lambda h: _by_hash(conn, h), keep=wanted.__contains__)
    finally:
        rows.close()  # a walk that stops early must release the server-side cursor
    head_seq, head_hash = head(conn)
    report.records = state.count
    report.add(state.problem)
    report.add(contents.first_bad)
    _check_purges(report, contents, state)
    if state.problem is None:
        _check_head(report, state, head_seq, head_hash)
    _check_checkpoints(report, checkpoints, state, config)
    return report


def _chain_rows(conn: Connection, contents: _Contents) -> Generator[ChainRow]:
    with conn.execution_options(yield_per=BATCH).execute(_ROWS) as result:
        yield from _checked(result, contents)


def _checked(result: Any, contents: _Contents) -> Iterator[ChainRow]:
    for row in result:
        contents.check(row)
        yield ChainRow(
            int(row.seq),
            utc_text(row.at),
            row.kind,
            row.ref,
            row.content_digest,
            row.prev_hash,
            row.record_hash,
        )


def _by_hash(conn: Connection, record_hash: str) -> int | None:
    found = conn.execute(_BY_HASH, {"h": record_hash}).scalar()
    return None if found is None else int(found)


def _check_purges(report: Report, contents: _Contents, state: Walk) -> None:
    """Content may only be missing where a retention record says it purged it."""
    spans = sorted(contents.purged)
    lows = [low for low, _ in spans]
    for seq in contents.missing:
        if seq > state.last_seq:
            break
        at = bisect.bisect_right(lows, seq) - 1
        if at < 0 or spans[at][1] < seq:
            detail = "its content was deleted, and no retention record purged it"
            report.add(Problem("removed", detail, seq))
            break
    report.purged = len(contents.missing)


def _check_head(report: Report, state: Walk, head_seq: int, head_hash: str) -> None:
    if head_seq > state.last_seq:
        detail = f"the chain head counts {head_seq} records but only {state.last_seq} remain"
        report.add(Problem("removed", detail, state.last_seq + 1))
    elif head_seq < state.last_seq:
        detail = f"records after the head ({head_seq}) were added outside the service"
        report.add(Problem("inserted", detail, head_seq + 1))
    elif head_hash != state.last_hash:
        report.add(Problem("changed", "the chain head disagrees with the last record", head_seq))


def _check_checkpoints(
    report: Report, checkpoints: list[Checkpoint], state: Walk, config: EvidenceSettings
) -> None:
    roots = _roots(config, report)
    agreed = 0  # the last checkpoint whose head the chain still has
    for checkpoint in checkpoints:
        report.checkpoints += 1
        report.add(signature_problem(checkpoint))
        report.add(_stamp_problem(checkpoint, roots, report))
        problem = _against_chain(checkpoint, state, agreed)
        report.add(problem)
        if problem is None and checkpoint.seq <= state.last_seq:
            agreed = checkpoint.seq
    _note_keys(report, checkpoints, config)
    covered = max((c.seq for c in checkpoints), default=0)
    if state.problem is None and state.last_seq > covered:
        report.notes.append(
            f"records {covered + 1} to {state.last_seq} are not covered by a signed "
            "checkpoint yet (the worker takes one every few minutes)"
        )


def signature_problem(checkpoint: Checkpoint) -> Problem | None:
    public = keys.from_hex(checkpoint.public_key)
    if keys.signature_ok(public, bytes.fromhex(checkpoint.signature), checkpoint.statement):
        return None
    detail = f"checkpoint {checkpoint.id}: its signature does not match its statement"
    return Problem("signature", detail, checkpoint.seq)


def _stamp_problem(
    checkpoint: Checkpoint, roots: list[x509.Certificate], report: Report
) -> Problem | None:
    token = decode_token(checkpoint)
    if token is None:
        return None
    try:
        timestamps.verify(token, checkpoint.statement, roots)
    except timestamps.TimestampError as exc:
        return Problem("timestamp", f"checkpoint {checkpoint.id}: {exc}", checkpoint.seq)
    report.stamped += 1
    return None


def _against_chain(checkpoint: Checkpoint, state: Walk, agreed: int) -> Problem | None:
    if state.problem is not None and checkpoint.seq >= state.last_seq + 1:
        return None  # the walk stopped before: its own problem says why
    if checkpoint.seq > state.last_seq:
        detail = (
            f"checkpoint {checkpoint.id} signed {checkpoint.seq} records; "
            f"only {state.last_seq} remain"
        )
        return Problem("removed", detail, state.last_seq + 1)
    if checkpoint.seq and state.hashes.get(checkpoint.seq) != checkpoint.head_hash:
        detail = (
            f"records {agreed + 1} to {checkpoint.seq} were rewritten after checkpoint "
            f"{checkpoint.id} signed them (its head hash is not the chain's)"
        )
        return Problem("changed", detail, agreed + 1)
    return None


def _roots(config: EvidenceSettings, report: Report) -> list[x509.Certificate]:
    if not config.tsa_ca:
        return []
    try:
        return timestamps.load_roots(config.tsa_ca)
    except (OSError, ValueError) as exc:
        report.notes.append(f"cannot read evidence.tsa_ca: {exc}")
        return []


def _note_keys(report: Report, checkpoints: list[Checkpoint], config: EvidenceSettings) -> None:
    used = sorted({c.public_key for c in checkpoints})
    for public in used:
        report.notes.append(f"checkpoints signed by key {keys.fingerprint(public)}")
    path = Path(config.key_path)
    if used and path.exists():
        current = keys.public_raw(keys.load_or_create(path)).hex()
        for public in used:
            if public != current:
                report.notes.append(
                    f"key {keys.fingerprint(public)} is not this instance's current key"
                )
    if any(c.tsa_token for c in checkpoints) and not config.tsa_ca:
        report.notes.append("timestamps checked against their data only: set evidence.tsa_ca")
