"""`antirelou evidence verify FILE.zip`: check a bundle offline, with nothing but the file.

In order: the archive is readable (CRCs); every file matches MANIFEST and nothing was
added; MANIFEST carries the instance key's signature; the chain segment is intact
(integrity.walk) and ends on a checkpoint; each checkpoint's signature and timestamp hold
and its head hash is the chain's; each content matches its record's digest; and every
line of messages.jsonl, messages.csv and events.jsonl says exactly what its content says.
Problems name the file, the line and the record.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from cryptography import x509

from antirelou.evidence import keys, timestamps
from antirelou.evidence.bundle import MESSAGE_FIELDS, csv_row
from antirelou.evidence.hashing import (
    ChainRow,
    canonical,
    content_digest,
    parse_statement,
    parse_utc,
)
from antirelou.evidence.integrity import Problem, walk
from antirelou.evidence.verify import Report

SIGNED = ("MANIFEST", "MANIFEST.sig")
CHUNK = 1 << 20
# What reading a member of a damaged archive raises (a bad CRC is only found at its end).
DAMAGED = (zipfile.BadZipFile, zlib.error, OSError, UnicodeDecodeError)
_Item = TypeVar("_Item")


class _Link(NamedTuple):
    """What the later steps need of a chain record: a bundle of a million texts must be
    checked on a laptop, so the records are not kept whole."""

    record_hash: str
    content_digest: str
    kind: str


def fingerprint(value: object) -> bytes:
    """A short digest of a JSON value, to compare two files' versions of it without keeping
    either (in canonical JSON, as the chain hashes contents)."""
    return hashlib.blake2b(canonical(value).encode(), digest_size=16).digest()


@dataclass
class _Bundle:
    archive: zipfile.ZipFile
    report: Report
    chain: dict[int, _Link] = field(default_factory=dict)
    contents: dict[int, bytes] = field(default_factory=dict)  # seq: fingerprint(content)
    csv_lines: dict[int, bytes] = field(default_factory=dict)  # seq: fingerprint(csv_row)

    def read(self, name: str) -> bytes | None:
        try:
            return self.archive.read(name)
        except (KeyError, *DAMAGED) as exc:
            self._unreadable(name, exc)
        return None

    def lines(self, name: str) -> Iterator[tuple[int, str]]:
        """The file's non-empty lines, read as they are needed (a bundle's files can be
        larger than memory would like); lines end at "\n" only, as they were written."""
        return self._stream(name, "\n", _numbered_lines)

    def csv_rows(self, name: str) -> Iterator[tuple[int, list[str]]]:
        return self._stream(name, "", lambda text: enumerate(csv.reader(text), start=1))

    def _stream(
        self, name: str, newline: str, parse: Callable[[io.TextIOWrapper], Iterator[_Item]]
    ) -> Iterator[_Item]:
        try:
            text = io.TextIOWrapper(self.archive.open(name), "utf-8-sig", newline=newline)
        except (KeyError, *DAMAGED) as exc:
            self._unreadable(name, exc)
            return
        try:
            with text:
                yield from parse(text)
        except DAMAGED as exc:  # a bad CRC shows at the end of the member
            self._unreadable(name, exc)

    def sha256(self, name: str) -> str | None:
        digest = hashlib.sha256()
        try:
            with self.archive.open(name) as member:
                while chunk := member.read(CHUNK):
                    digest.update(chunk)
        except (KeyError, *DAMAGED) as exc:
            self._unreadable(name, exc)
            return None
        return digest.hexdigest()

    def _unreadable(self, name: str, error: Exception) -> None:
        if isinstance(error, KeyError):
            self.problem("removed", "the file is missing", name)
        else:
            self.problem("file", f"damaged in the archive ({error})", name)

    def problem(self, what: str, detail: str, where: str, seq: int | None = None) -> None:
        self.report.add(Problem(what, detail, seq, where))


def _numbered_lines(text: io.TextIOWrapper) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text, start=1):
        line = line.rstrip("\n")
        if line:
            yield number, line


def verify_bundle(path: Path) -> Report:
    """Check the bundle at `path`; the report lists what is wrong and where."""
    report = Report()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        report.add(Problem("file", f"not a readable zip: {exc}", None, path.name))
        return report
    with archive:
        bundle = _Bundle(archive, report)
        for step in (_manifest, _signature, _chain, _checkpoints, _contents, _messages,
                     _csv, _events):  # fmt: skip
            step(bundle)
    return report


def _manifest(bundle: _Bundle) -> None:
    listed: dict[str, str] = {}
    for number, line in bundle.lines("MANIFEST"):
        digest, _, name = line.partition("  ")
        listed[name] = digest
        if not name or len(digest) != 64:
            bundle.problem("changed", f"line {number} is not `sha256  name`", "MANIFEST")
    present = {info.filename for info in bundle.archive.infolist() if not info.is_dir()}
    for name in sorted(present - set(listed) - set(SIGNED)):
        bundle.problem("inserted", "this file is not listed in MANIFEST", name)
    for name, digest in sorted(listed.items()):
        if name not in present:
            bundle.problem("removed", "listed in MANIFEST but missing", name)
            continue
        found = bundle.sha256(name)
        if found is not None and found != digest:
            bundle.problem("changed", "its SHA-256 differs from MANIFEST", name)


def _public_key(bundle: _Bundle, name: str) -> Any:
    data = bundle.read(name)
    if data is None:
        return None
    try:
        return keys.from_pem(data)
    except (ValueError, keys.SigningKeyError) as exc:
        bundle.problem("changed", f"not an Ed25519 public key ({exc})", name)
        return None


def _signature(bundle: _Bundle) -> None:
    public = _public_key(bundle, "evidence/public_key.pem")
    manifest, signature = bundle.read("MANIFEST"), bundle.read("MANIFEST.sig")
    if public is None or manifest is None or signature is None:
        return
    if not keys.signature_ok(public, signature, manifest):
        bundle.problem("signature", "MANIFEST is not signed by evidence/public_key.pem", "MANIFEST")
    fingerprint = keys.fingerprint(keys.public_raw(public).hex())
    bundle.report.notes.append(f"bundle signed by key {fingerprint}")


def _chain(bundle: _Bundle) -> None:
    """Read chain.csv once to check every line is a record (and keep what later steps
    need), then walk it again, streamed."""
    where = "evidence/chain.csv"
    first = None
    for number, row in _chain_rows(bundle):
        if row is None:
            bundle.problem("changed", f"line {number} is not a record", where)
            bundle.chain.clear()
            return
        first = row.seq if first is None else first
        bundle.chain[row.seq] = _Link(row.record_hash, row.content_digest, sys.intern(row.kind))
    if first is None:
        return
    rows = (row for _, row in _chain_rows(bundle) if row is not None)
    state = walk(rows, _lookup(bundle), first_seq=first, prev_hash=None)
    bundle.report.records = state.count
    if state.problem:
        p = state.problem
        bundle.report.add(Problem(p.what, p.detail, p.seq, where))


def _chain_rows(bundle: _Bundle) -> Iterator[tuple[int, ChainRow | None]]:
    for number, line in bundle.lines("evidence/chain.csv"):
        if number > 1:
            yield number, _chain_row(line)


def _lookup(bundle: _Bundle) -> Callable[[str], int | None]:
    """record_hash -> seq, for the walk to say what happened when a link is broken: built
    only then, from the records kept."""
    found: dict[str, int] = {}

    def by_hash(record_hash: str) -> int | None:
        if not found:
            found.update((link.record_hash, seq) for seq, link in bundle.chain.items())
        return found.get(record_hash)

    return by_hash


def _chain_row(line: str) -> ChainRow | None:
    parts = line.split(",")
    if len(parts) != 7 or not parts[0].isdigit():
        return None
    seq, at, kind, ref, digest, prev, record = parts
    return ChainRow(int(seq), at, kind, ref, digest, prev, record)


def _checkpoints(bundle: _Bundle) -> None:
    roots = _roots(bundle)
    last = 0
    for number, line in bundle.lines("evidence/checkpoints.csv"):
        if number == 1:
            continue
        cp_id, _, _, _, _, key, _ = (line.split(",") + [""] * 7)[:7]
        last = max(last, _checkpoint(bundle, cp_id, key, roots))
        bundle.report.checkpoints += 1
    top = max(bundle.chain, default=0)
    if bundle.chain and last != top:
        detail = f"the chain ends at record {top} but the last checkpoint covers {last}"
        bundle.problem("inserted" if top > last else "removed", detail, "evidence/chain.csv", top)


def _checkpoint(bundle: _Bundle, cp_id: str, key: str, roots: list[x509.Certificate]) -> int:
    base = f"evidence/checkpoints/{cp_id}"
    data, signature = bundle.read(f"{base}.txt"), bundle.read(f"{base}.sig")
    public = _public_key(bundle, f"evidence/keys/{key}.pem")
    if data is None or signature is None or public is None:
        return 0
    try:
        stated = parse_statement(data)
    except (ValueError, KeyError, UnicodeDecodeError):
        bundle.problem("changed", "not a checkpoint statement", f"{base}.txt")
        return 0
    if not keys.signature_ok(public, signature, data):
        bundle.problem("signature", "the signature does not match", f"{base}.txt", stated.seq)
    row = bundle.chain.get(stated.seq)
    if row is None or row.record_hash != stated.head_hash:
        detail = f"it signed record {stated.seq} with another hash than the chain's"
        bundle.problem("changed", detail, f"{base}.txt", stated.seq)
    _stamp(bundle, base, data, roots, stated.seq)
    return stated.seq


def _stamp(
    bundle: _Bundle, base: str, data: bytes, roots: list[x509.Certificate], seq: int
) -> None:
    if f"{base}.tsr" not in bundle.archive.namelist():
        return
    token = bundle.read(f"{base}.tsr")
    if token is None:
        return
    try:
        when = timestamps.verify(token, data, roots)
    except timestamps.TimestampError as exc:
        bundle.problem("timestamp", str(exc), f"{base}.tsr", seq)
        return
    bundle.report.stamped += 1
    bundle.report.notes.append(
        f"checkpoint at record {seq} timestamped {when:%Y-%m-%d %H:%M:%S} UTC"
    )


def _roots(bundle: _Bundle) -> list[x509.Certificate]:
    if "evidence/tsa-ca.pem" not in bundle.archive.namelist():
        return []
    data = bundle.read("evidence/tsa-ca.pem")
    try:
        return x509.load_pem_x509_certificates(data or b"")
    except ValueError:
        bundle.problem("changed", "not a PEM certificate", "evidence/tsa-ca.pem")
        return []


def _contents(bundle: _Bundle) -> None:
    where = "evidence/contents.tsv"
    for number, line in bundle.lines(where):
        parts = line.split("\t", 3)
        if len(parts) != 4 or not parts[0].isdigit():
            bundle.problem("changed", f"line {number} is not `seq digest salt json`", where)
            continue
        seq, digest, salt, text = int(parts[0]), parts[1], parts[2], parts[3]
        row = bundle.chain.get(seq)
        if content_digest(salt, text) != digest:
            bundle.problem(
                "changed", f"line {number}: the content no longer matches its digest", where, seq
            )
        elif row is None or row.content_digest != digest:
            bundle.problem("changed", f"line {number}: this digest is not the chain's", where, seq)
        else:
            bundle.contents[seq] = fingerprint(json.loads(text))


def _messages(bundle: _Bundle) -> None:
    where = "messages.jsonl"
    for number, line in bundle.lines(where):
        try:
            row = json.loads(line)
            seq = int(row["seq"])
        except (ValueError, KeyError, TypeError):
            bundle.problem("changed", f"line {number} is not a message", where)
            continue
        if not _same(row, bundle.contents.get(seq)):
            bundle.problem(
                "changed", f"line {number} differs from the recorded content", where, seq
            )
            continue
        bundle.csv_lines[seq] = fingerprint(csv_row(row))


def _same(row: dict[str, Any], content: bytes | None) -> bool:
    """The line is the recorded content, plus its seq and its local time (the same
    instant as the content's)."""
    if content is None:
        return False
    rest = {k: v for k, v in row.items() if k not in ("seq", "received_at_local")}
    try:
        local = parse_utc(str(row["received_at"])) == _instant(row["received_at_local"])
    except (KeyError, ValueError, TypeError):
        return False
    return fingerprint(rest) == content and local


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _csv(bundle: _Bundle) -> None:
    where = "messages.csv"
    for number, cells in bundle.csv_rows(where):
        if number == 1:
            if tuple(cells) != MESSAGE_FIELDS:
                bundle.problem("changed", "the header is not the expected one", where)
            continue
        seq = int(cells[0]) if cells and cells[0].isdigit() else -1
        expected = bundle.csv_lines.get(seq)
        if expected is None or fingerprint(cells) != expected:
            bundle.problem(
                "changed",
                f"line {number} differs from the recorded content",
                where,
                seq if seq > 0 else None,
            )


def _events(bundle: _Bundle) -> None:
    where = "events.jsonl"
    for number, line in bundle.lines(where):
        try:
            row = json.loads(line)
            seq = int(row["seq"])
        except (ValueError, KeyError, TypeError):
            bundle.problem("changed", f"line {number} is not an event", where)
            continue
        content = bundle.contents.get(seq)
        chain = bundle.chain.get(seq)
        if (
            content is None
            or content != fingerprint(row.get("content"))
            or chain is None
            or chain.kind != row.get("kind")
        ):
            bundle.problem(
                "changed", f"line {number} differs from the recorded content", where, seq
            )
