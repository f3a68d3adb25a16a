"""`antirelou evidence export`: a self-contained, verifiable zip for a complaint.

    messages.csv, messages.jsonl   the selected texts, exactly as recorded (+ seq, local time)
    events.jsonl                   the other selected facts (replies, calls, incidents...)
    evidence/chain.csv             every record from the first selected one up to a signed
                                   checkpoint (hashed fields only: others' texts stay out)
    evidence/contents.tsv          seq, digest, salt and canonical JSON of the selected records
    evidence/checkpoints/          each checkpoint in that span: statement, signature, stamp
    evidence/keys/, public_key.pem the public keys; tsa-ca.pem when a TSA is configured
    report.pdf, VERIFY.md          for people; MANIFEST (sha256sum -c) and MANIFEST.sig

The records stream from the database to temporary files (the summary for the report is
gathered on the way), then everything is hashed, signed and zipped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from antirelou.evidence import checkpoints, keys, report
from antirelou.evidence.checkpoints import Checkpoint
from antirelou.evidence.hashing import parse_utc, utc_text
from antirelou.evidence.selection import Selection, describe, selected_seqs
from antirelou.evidence.settings import evidence_settings
from antirelou.evidence.summary import Summary
from antirelou.evidence.tables import evidence_checkpoints, evidence_records
from antirelou.evidence.verifydoc import verify_md
from antirelou.service import Service

Progress = Callable[[int, int], None]  # (records done, records in all)
MESSAGE_FIELDS = (
    "seq", "message", "provider", "provider_id", "received_at_utc", "received_at_local",
    "sender", "recipient", "body", "num_media", "raw", "signature_checked", "decision",
    "reasons", "signals", "incident",
)  # fmt: skip
CHAIN_HEADER = "seq,at,kind,ref,content_digest,prev_hash,record_hash"
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
BATCH = 5000
_r, _c = evidence_records, evidence_checkpoints


class ExportError(Exception):
    """Nothing to export, or the bundle cannot be written."""


@dataclass
class Exported:
    path: Path
    texts: int
    records: int
    selected: int
    checkpoint: Checkpoint


def csv_cell(value: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: defuse them."""
    return "'" + value if value.startswith(_FORMULA) else value


def message_row(seq: int, content: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    """One line of messages.jsonl: the recorded content, its seq and the local time."""
    local = parse_utc(content["received_at"]).astimezone(zone).isoformat()
    return {"seq": seq, "received_at_local": local, **content}


def csv_row(row: dict[str, Any]) -> list[str]:
    values = {
        **row,
        "received_at_utc": row["received_at"],
        "raw": json.dumps(row["raw"], ensure_ascii=False, sort_keys=True),
        "reasons": ";".join(row["reasons"]),
        "signals": ";".join(row.get("signals", [])),
        "signature_checked": "yes" if row["signature_checked"] else "no",
        "incident": "" if row["incident"] is None else str(row["incident"]),
    }
    return [csv_cell(str(values.get(name, ""))) for name in MESSAGE_FIELDS]


def export(
    service: Service,
    selection: Selection,
    out: Path,
    lang: str = "fr",
    progress: Progress | None = None,
) -> Exported:
    """Write the bundle for `selection` to `out` (a .zip), atomically."""
    with service.engine.connect() as conn:
        seqs = selected_seqs(conn, selection)
    if not seqs:
        raise ExportError("no evidence record matches this selection")
    cover = _covering(service, seqs[-1])
    with tempfile.TemporaryDirectory(prefix="antirelou-export-") as folder:
        root = Path(folder)
        writer = _Writer(root, service, lang)
        with service.engine.connect() as conn:
            writer.records(conn, set(seqs), seqs[0], cover.seq, progress)
            cps = writer.checkpoints(conn, seqs[0], cover.seq)
        writer.finish(selection, cps, cover)
        _zip(root, out)
    return Exported(out, writer.summary.texts, writer.count, len(seqs), cover)


def _covering(service: Service, seq: int) -> Checkpoint:
    """A signed checkpoint at or after `seq`; a fresh one if none covers it yet."""
    with service.engine.connect() as conn:
        found = checkpoints.covering(conn, seq)
    return found or checkpoints.take(service, "export")


@dataclass
class _Writer:
    root: Path
    service: Service
    lang: str
    summary: Summary = field(default_factory=Summary)
    count: int = 0

    def __post_init__(self) -> None:
        (self.root / "evidence" / "checkpoints").mkdir(parents=True)
        (self.root / "evidence" / "keys").mkdir()
        first = self.service.settings.lines[0] if self.service.settings.lines else None
        self.zone = first.zone if first else ZoneInfo("Europe/Paris")

    def _zone(self, line: str) -> ZoneInfo:
        found = self.service.line(line)
        return found.zone if found else self.zone

    def records(
        self, conn: Connection, wanted: set[int], low: int, high: int, progress: Progress | None
    ) -> None:
        total = high - low + 1
        with ExitStack() as stack:
            files = {name: stack.enter_context(self._open(name)) for name in _STREAMS}
            files["evidence/chain.csv"].write(CHAIN_HEADER + "\n")
            table = csv.writer(files["messages.csv"], lineterminator="\r\n")
            table.writerow(MESSAGE_FIELDS)
            for row in _segment(conn, low, high):
                self._record(row, wanted, files, table)
                if progress and self.count % BATCH == 0:
                    progress(self.count, total)
        if progress:
            progress(self.count, total)

    def _open(self, name: str) -> IO[str]:
        encoding = "utf-8-sig" if name.endswith(".csv") and name.startswith("messages") else "utf-8"
        return (self.root / name).open("w", encoding=encoding, newline="")

    def _record(self, row: Any, wanted: set[int], files: dict[str, IO[str]], table: Any) -> None:
        seq = int(row.seq)
        self.count += 1
        at = utc_text(row.at)
        files["evidence/chain.csv"].write(
            f"{seq},{at},{row.kind},{row.ref},{row.content_digest},{row.prev_hash},"
            f"{row.record_hash}\n"
        )
        if seq not in wanted:
            return
        if row.content is None:
            self.summary.observe(row.kind, None)
            return
        content = json.loads(row.content)
        self.summary.observe(row.kind, content)
        files["evidence/contents.tsv"].write(
            f"{seq}\t{row.content_digest}\t{row.salt}\t{row.content}\n"
        )
        if row.kind == "inbound":
            line = message_row(seq, content, self._zone(str(content.get("recipient"))))
            files["messages.jsonl"].write(_jsonl(line))
            table.writerow(csv_row(line))
        else:
            event = {"seq": seq, "kind": row.kind, "ref": row.ref, "at": at, "content": content}
            files["events.jsonl"].write(_jsonl(event))

    def checkpoints(self, conn: Connection, low: int, high: int) -> list[Checkpoint]:
        query = select(_c).where(_c.c.seq >= low, _c.c.seq <= high).order_by(_c.c.seq, _c.c.id)
        found = [Checkpoint.of(row) for row in conn.execute(query)]
        lines = ["id,seq,head_hash,at,reason,key,timestamped"]
        for cp in found:
            lines.append(self._checkpoint(cp))
        (self.root / "evidence" / "checkpoints.csv").write_text("\n".join(lines) + "\n")
        return found

    def _checkpoint(self, cp: Checkpoint) -> str:
        folder = self.root / "evidence" / "checkpoints"
        (folder / f"{cp.id}.txt").write_bytes(cp.statement)
        (folder / f"{cp.id}.sig").write_bytes(bytes.fromhex(cp.signature))
        token = checkpoints.decode_token(cp)
        if token is not None:
            (folder / f"{cp.id}.tsr").write_bytes(token)
        name = key_name(cp.public_key)
        (self.root / "evidence" / "keys" / f"{name}.pem").write_bytes(
            keys.public_pem(keys.from_hex(cp.public_key))
        )
        stamped = "yes" if token else "no"
        return f"{cp.id},{cp.seq},{cp.head_hash},{utc_text(cp.at)},{cp.reason},{name},{stamped}"

    def finish(self, selection: Selection, cps: list[Checkpoint], cover: Checkpoint) -> None:
        config = evidence_settings(self.service.settings)
        key = keys.load_or_create(config.key_path)
        public_hex = keys.public_raw(key).hex()
        (self.root / "evidence" / "public_key.pem").write_bytes(keys.public_pem(key))
        if config.tsa_ca:
            shutil.copyfile(config.tsa_ca, self.root / "evidence" / "tsa-ca.pem")
        fingerprint = keys.fingerprint(public_hex)
        context = self._context(selection, cps, cover, fingerprint, bool(config.tsa_url))
        (self.root / "report.pdf").write_bytes(report.render(self.summary, context, self.lang))
        name = f"{selection.slug()}.zip"
        (self.root / "VERIFY.md").write_text(verify_md(self.lang, name, fingerprint))
        manifest = _manifest(self.root)
        (self.root / "MANIFEST").write_bytes(manifest)
        (self.root / "MANIFEST.sig").write_bytes(key.sign(manifest))

    def _context(
        self,
        selection: Selection,
        cps: list[Checkpoint],
        cover: Checkpoint,
        fingerprint: str,
        tsa: bool,
    ) -> report.Context:
        return report.Context(
            selection=describe(selection, self.lang),
            made=self.service.clock.now(),
            zone=self.zone,
            first_seq=cover.seq - self.count + 1,
            last_seq=cover.seq,
            records=self.count,
            checkpoints=len(cps),
            stamped=sum(cp.tsa_token is not None for cp in cps),
            checkpoint_seq=cover.seq,
            checkpoint_hash=cover.head_hash,
            checkpoint_at=cover.at,
            fingerprint=fingerprint,
            tsa=tsa,
        )


_STREAMS = (
    "evidence/chain.csv",
    "evidence/contents.tsv",
    "messages.jsonl",
    "messages.csv",
    "events.jsonl",
)


def key_name(public_hex: str) -> str:
    return keys.fingerprint(public_hex).removeprefix("SHA256:")[:16]


def _jsonl(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) + "\n"


def _segment(conn: Connection, low: int, high: int) -> Iterator[Any]:
    query = select(_r).where(_r.c.seq >= low, _r.c.seq <= high).order_by(_r.c.seq)
    with conn.execution_options(yield_per=BATCH).execute(query) as result:
        yield from result


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _manifest(root: Path) -> bytes:
    """`sha256sum -c`-compatible lines for every file (MANIFEST and its signature aside)."""
    out = io.StringIO()
    for name in _files(root):
        if name not in ("MANIFEST", "MANIFEST.sig"):
            out.write(f"{_sha256(root / name)}  {name}\n")
    return out.getvalue().encode()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _zip(root: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    stamp = (1980, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name in _files(root):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            with (root / name).open("rb") as source, archive.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1 << 20)
    partial.replace(out)


__all__ = ["ExportError", "Exported", "export"]
