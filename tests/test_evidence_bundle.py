"""Export bundles: what they hold, that standard tools verify them, and that any changed
byte makes `verify FILE.zip` fail, naming the file (and the record)."""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from antirelou.clock import VirtualClock
from antirelou.evidence import bundle
from antirelou.evidence.bundle_verify import verify_bundle
from antirelou.evidence.cli import evidence
from antirelou.evidence.selection import Selection, SelectionError
from antirelou.operations import close_incident
from antirelou.service import Service
from tests.evidence_kit import evidence_service, have, open_incident, quiet_hour, raid


@dataclass
class Story:
    service: Service
    incident: int
    quiet: int
    raid: int


@pytest.fixture
def story(database_url: str, clock: VirtualClock, tmp_path: Path) -> Iterator[Story]:
    """Quiet texts, then a raid inside an incident, then quiet again."""
    service = evidence_service(database_url, clock, tmp_path)
    quiet = quiet_hour(service, clock, 6)
    incident = open_incident(service)
    insults = raid(service, clock)
    close_incident(service, incident, "tester")
    clock.advance(timedelta(minutes=5))
    quiet += quiet_hour(service, clock, 3)
    yield Story(service, incident, len(quiet), len(insults))
    service.dispose()


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def jsonl(data: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def test_export_all_holds_everything_and_verifies(story: Story, tmp_path: Path) -> None:
    out = tmp_path / "all.zip"
    done = bundle.export(story.service, Selection(everything=True), out)
    assert done.texts == story.quiet + story.raid
    files = members(out)
    for name in ("messages.csv", "messages.jsonl", "events.jsonl", "report.pdf", "VERIFY.md",
                 "MANIFEST", "MANIFEST.sig", "evidence/chain.csv", "evidence/contents.tsv",
                 "evidence/public_key.pem", "evidence/checkpoints.csv"):  # fmt: skip
        assert name in files
    texts = jsonl(files["messages.jsonl"])
    assert len(texts) == done.texts
    first = texts[0]
    for field in ("provider", "provider_id", "sender", "recipient", "body", "raw",
                  "signature_checked", "decision", "reasons", "incident", "received_at",
                  "received_at_local"):  # fmt: skip
        assert field in first
    listed = {line.split("  ")[1] for line in files["MANIFEST"].decode().splitlines()}
    assert listed == set(files) - {"MANIFEST", "MANIFEST.sig"}
    report = verify_bundle(out)
    assert report.ok, report.problems
    assert report.records == done.records


def test_an_incident_bundle_holds_its_texts_only(story: Story, tmp_path: Path) -> None:
    out = tmp_path / "incident.zip"
    bundle.export(story.service, Selection(incident=story.incident), out)
    files = members(out)
    texts = jsonl(files["messages.jsonl"])
    assert len(texts) == story.raid
    assert {t["incident"] for t in texts} == {story.incident}
    kinds = {e["kind"] for e in jsonl(files["events.jsonl"])}
    assert "incident_opened" in kinds
    # the chain runs from the first selected record to a checkpoint; other texts'
    # contents stay out of the bundle
    contents = files["evidence/contents.tsv"].decode().splitlines()
    assert len(contents) == len(jsonl(files["events.jsonl"])) + story.raid
    assert verify_bundle(out).ok


def test_a_sender_bundle_and_a_period_bundle(story: Story, tmp_path: Path) -> None:
    sender = tmp_path / "sender.zip"
    bundle.export(story.service, Selection(sender="+33699000003"), sender)
    texts = jsonl(members(sender)["messages.jsonl"])
    assert {t["sender"] for t in texts} == {"+33699000003"}
    assert len(texts) == 2
    start = story.service.clock.now() - timedelta(minutes=4)
    period = tmp_path / "period.zip"
    until = story.service.clock.now() + timedelta(seconds=1)
    bundle.export(story.service, Selection(since=start, until=until), period)
    assert len(jsonl(members(period)["messages.jsonl"])) == 3
    assert verify_bundle(sender).ok
    assert verify_bundle(period).ok


def test_a_selection_is_exactly_one_form() -> None:
    with pytest.raises(SelectionError):
        Selection()
    with pytest.raises(SelectionError):
        Selection(incident=1, everything=True)


def rewrite(path: Path, name: str, change: bytes, into: bytes, manifest: bool = False) -> None:
    """Change one byte of one member, as a forger would (optionally fixing MANIFEST too)."""
    files = members(path)
    data = files[name]
    assert change in data, (name, change)
    files[name] = data.replace(change, into, 1)
    if manifest:
        old = bundle.hashlib.sha256(data).hexdigest()
        new = bundle.hashlib.sha256(files[name]).hexdigest()
        files["MANIFEST"] = files["MANIFEST"].replace(old.encode(), new.encode())
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, content in files.items():
            archive.writestr(member, content)


@pytest.fixture
def exported(story: Story, tmp_path: Path) -> Path:
    out = tmp_path / "bundle.zip"
    bundle.export(story.service, Selection(everything=True), out)
    return out


def seq_of_first(path: Path, body: str) -> int:
    for row in jsonl(members(path)["messages.jsonl"]):
        if row["body"] == body:
            return int(str(row["seq"]))
    raise AssertionError(body)


@pytest.mark.parametrize("fix_manifest", [False, True], ids=["plain", "manifest-rehashed"])
@pytest.mark.parametrize(
    ("name", "change", "into"),
    [
        ("messages.jsonl", b"Marc (2)", b"Mare (2)"),
        ("messages.csv", b"Marc (2)", b"Mare (2)"),
        ("evidence/contents.tsv", b"Marc (2)", b"Mare (2)"),
        ("events.jsonl", b"raid en cours", b"raid en court"),
    ],
)
def test_a_changed_text_is_found_in_its_file_and_record(
    exported: Path, name: str, change: bytes, into: bytes, fix_manifest: bool
) -> None:
    body = change.decode()
    seq = seq_of_first(exported, "Salut, c'est Marc (2)") if "Marc" in body else None
    rewrite(exported, name, change, into, fix_manifest)
    report = verify_bundle(exported)
    assert not report.ok
    places = {(p.where, p.seq) for p in report.problems}
    if seq is not None:
        assert (name, seq) in places, report.problems
    assert any(p.where == name for p in report.problems)
    if fix_manifest:
        assert any(p.what == "signature" and p.where == "MANIFEST" for p in report.problems)


def test_a_changed_chain_record_is_located(exported: Path) -> None:
    lines = members(exported)["evidence/chain.csv"].decode().splitlines()
    seq, at, kind, ref, digest, prev, record = lines[4].split(",")
    forged = ",".join(
        [seq, at, kind, ref, digest[:-1] + ("0" if digest[-1] != "0" else "1"), prev, record]
    )
    rewrite(exported, "evidence/chain.csv", lines[4].encode(), forged.encode(), manifest=True)
    report = verify_bundle(exported)
    assert ("evidence/chain.csv", int(seq)) in {(p.where, p.seq) for p in report.problems}
    assert report.first is not None
    assert report.first.seq == int(seq)


@pytest.mark.parametrize("name", ["report.pdf", "VERIFY.md", "evidence/public_key.pem"])
def test_any_other_changed_byte_is_found(exported: Path, name: str) -> None:
    data = members(exported)[name]
    middle = len(data) // 2
    rewrite(
        exported,
        name,
        data[middle : middle + 8],
        bytes([data[middle] ^ 1]) + data[middle + 1 : middle + 8],
    )
    report = verify_bundle(exported)
    assert any(p.where == name for p in report.problems), report.problems


def test_an_added_or_removed_file_is_found(exported: Path) -> None:
    files = members(exported)
    files["extra.txt"] = b"slipped in"
    del files["events.jsonl"]
    with zipfile.ZipFile(exported, "w") as archive:
        for member, content in files.items():
            archive.writestr(member, content)
    found = {(p.what, p.where) for p in verify_bundle(exported).problems}
    assert ("inserted", "extra.txt") in found
    assert ("removed", "events.jsonl") in found


def test_a_flipped_byte_in_the_zip_itself_is_found(exported: Path) -> None:
    raw = bytearray(exported.read_bytes())
    with zipfile.ZipFile(exported) as archive:
        info = archive.getinfo("messages.jsonl")
    raw[info.header_offset + 30 + len(info.filename) + 20] ^= 0x01
    exported.write_bytes(bytes(raw))
    report = verify_bundle(exported)
    assert any(p.where == "messages.jsonl" for p in report.problems), report.problems


def _blocks(markdown: str, heading: str) -> str:
    """The indented shell block under a VERIFY.md heading."""
    section = markdown.split(heading, 1)[1].split("\n## ", 1)[0]
    return "\n".join(line[4:] for line in section.splitlines() if line.startswith("    "))


@pytest.mark.skipif(not (have("openssl") and have("sha256sum") and have("unzip")), reason="tools")
def test_standard_tools_verify_the_bundle(exported: Path, tmp_path: Path) -> None:
    """Everything VERIFY.md tells a lawyer's expert to run passes, and catches a change."""
    folder = tmp_path / "unzipped"
    subprocess.run(["unzip", "-q", str(exported), "-d", str(folder)], check=True)
    doc = (folder / "VERIFY.md").read_text()

    def run(script: str) -> str:
        done = subprocess.run(["bash", "-c", script], cwd=folder, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    manifest = run(_blocks(doc, "## 1."))
    assert "FAILED" not in manifest
    assert "Signature Verified Successfully" in manifest
    checkpoints = sorted((folder / "evidence" / "checkpoints").glob("*.txt"))
    key = next((folder / "evidence" / "keys").glob("*.pem")).relative_to(folder)
    for statement in checkpoints:
        sig = statement.with_suffix(".sig").relative_to(folder)
        out = run(f"openssl pkeyutl -verify -pubin -inkey {key} -rawin "
                  f"-in {statement.relative_to(folder)} -sigfile {sig}")  # fmt: skip
        assert "Signature Verified Successfully" in out
    assert run(_blocks(doc, "## 3.")) == ""
    assert run(_blocks(doc, "## 4.")) == ""
    contents = folder / "evidence" / "contents.tsv"
    contents.write_text(contents.read_text().replace("Marc (2)", "Mare (2)", 1))
    assert "modifié" in run(_blocks(doc, "## 4."))


def test_the_cli_exports_and_verifies(
    story: Story, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("antirelou.evidence.cli._service", lambda _path: story.service)
    out = tmp_path / "cli.zip"
    runner = CliRunner()
    result = runner.invoke(
        evidence, ["export", "--incident", str(story.incident), "--out", str(out), "--lang", "en"]
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"\d+ texts", result.output)
    assert runner.invoke(evidence, ["verify", str(out)]).exit_code == 0
    rewrite(out, "messages.jsonl", b"SALOPE", b"SAL0PE")
    broken = runner.invoke(evidence, ["verify", str(out)])
    assert broken.exit_code == 1
    assert "messages.jsonl" in broken.output
    assert (
        runner.invoke(evidence, ["export", "--all", "--incident", "1", "--out", str(out)]).exit_code
        == 2
    )
