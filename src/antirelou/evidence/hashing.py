"""The chain's arithmetic, shared by the writer and by both verifiers (database, bundle).

Everything hashed is plain text, so anyone can recompute it with `sha256sum`:

    content_digest = SHA-256( salt || canonical JSON of the content )
    record_hash    = SHA-256( "seq|kind|ref|at|content_digest|prev_hash" )

`salt` is 32 random hex characters per record, hashed as those ASCII characters; `at` is
UTC as `2017-10-30T16:00:00.000000Z`; the first record's prev_hash is 64 zeros. The
canonical JSON is `json.dumps(content, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)` in UTF-8: keys sorted, no spaces, non-ASCII kept as is. Hashing `at`
(which the design's formula leaves out) keeps the time of each fact provable after its
content is purged: "12,000 texts between 16:00 and 20:00" survives retention.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from antirelou.clock import utc_iso

GENESIS = "0" * 64
KINDS = frozenset(
    {
        "inbound",
        "reply",
        "call",
        "incident_opened",
        "incident_closed",
        "operator_action",
        "retention",
    }
)
# Refs go into CSV files and the hashed line unquoted: no separators, no spaces.
_REF = re.compile(r"[A-Za-z0-9_.:+@-]{1,96}")
STATEMENT_HEADER = "antirelou evidence checkpoint v1"


def utc_text(when: datetime) -> str:
    """The one text form of a time in hashes and statements (UTC, microseconds, Z)."""
    if when.tzinfo is None:
        raise ValueError("naive datetime in evidence")
    return utc_iso(when, "T") + "Z"


def parse_utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot put {type(value).__name__} in evidence content")


# What json.dumps(content, sort_keys=True, ...) would build on each call, built once.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_jsonable
)


def canonical(content: object) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept, datetimes as `utc_text`."""
    return _CANONICAL.encode(content)


def new_salt() -> str:
    return secrets.token_hex(16)


def content_digest(salt: str, canonical_json: str) -> str:
    return hashlib.sha256((salt + canonical_json).encode()).hexdigest()


def record_line(seq: int, kind: str, ref: str, at: str, digest: str, prev_hash: str) -> str:
    return f"{seq}|{kind}|{ref}|{at}|{digest}|{prev_hash}"


def check_kind_ref(kind: str, ref: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown evidence kind {kind!r}")
    if not _REF.fullmatch(ref):
        raise ValueError(f"evidence ref {ref!r} must match {_REF.pattern}")


@dataclass(frozen=True)
class ChainRow:
    """A record's hashed fields, as stored in the database or in a bundle's chain.csv."""

    seq: int
    at: str
    kind: str
    ref: str
    content_digest: str
    prev_hash: str
    record_hash: str

    def hash_as(self, seq: int) -> str:
        """The hash these fields give at position `seq` (the stored seq or another)."""
        line = record_line(seq, self.kind, self.ref, self.at, self.content_digest, self.prev_hash)
        return hashlib.sha256(line.encode()).hexdigest()

    @property
    def intact(self) -> bool:
        return self.hash_as(self.seq) == self.record_hash


def record_hash(seq: int, kind: str, ref: str, at: str, digest: str, prev_hash: str) -> str:
    return hashlib.sha256(record_line(seq, kind, ref, at, digest, prev_hash).encode()).hexdigest()


def statement(seq: int, head_hash: str, at: datetime) -> bytes:
    """The exact bytes a checkpoint signs (and timestamps): a short text file."""
    lines = [STATEMENT_HEADER, f"records: {seq}", f"head: {head_hash}", f"at: {utc_text(at)}"]
    return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True)
class Statement:
    seq: int
    head_hash: str
    at: str


def parse_statement(data: bytes) -> Statement:
    """Read back a checkpoint statement; ValueError if it is not one."""
    lines = data.decode().rstrip("\n").split("\n")
    if len(lines) != 4 or lines[0] != STATEMENT_HEADER:
        raise ValueError("not a checkpoint statement")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return Statement(int(fields["records"]), fields["head"], fields["at"])


def ranges_text(seqs: list[int]) -> str:
    """Sorted seqs as "1-5,7,9-12" (retention records list what they purged)."""
    parts: list[str] = []
    ordered = sorted(set(seqs))
    start = prev = ordered[0] if ordered else 0
    for seq in ordered[1:]:
        if seq != prev + 1:
            parts.append(_span(start, prev))
            start = seq
        prev = seq
    if ordered:
        parts.append(_span(start, prev))
    return ",".join(parts)


def _span(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}-{end}"


def parse_ranges(text: str) -> list[tuple[int, int]]:
    spans = []
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        spans.append((int(low), int(high or low)))
    return spans
