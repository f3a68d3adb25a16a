"""Tampering with the log in the database: verify fails and names the first broken record.

Each case edits the tables the way someone with database access could, then checks the
record and the kind of damage that `verify` reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from antirelou.clock import VirtualClock
from antirelou.evidence import chain, checkpoints, hashing
from antirelou.evidence.cli import evidence
from antirelou.evidence.tables import evidence_checkpoints, evidence_head, evidence_records
from antirelou.evidence.verify import verify_database
from antirelou.service import Service
from tests.evidence_kit import evidence_service, sql

r = evidence_records
EDIT = "UPDATE evidence_records SET content = replace(content, 'message', 'x') WHERE seq = 5"
RENUMBER_DOWN = "UPDATE evidence_records SET seq = seq - 1 WHERE seq > 5"
# Two steps so the unique seq never collides mid-statement (PostgreSQL checks per row).
SHIFT_UP = (
    "UPDATE evidence_records SET seq = seq + 1000 WHERE seq >= 5",
    "UPDATE evidence_records SET seq = seq - 999 WHERE seq >= 1005",
)


@pytest.fixture
def ten(database_url: str, clock: VirtualClock, tmp_path: Path) -> Iterator[Service]:
    """A chain of ten records."""
    service = evidence_service(database_url, clock, tmp_path)
    for i in range(1, 11):
        clock.advance(timedelta(seconds=7))
        with service.engine.begin() as conn:
            content = {"body": f"message {i}", "sender": f"+3361200000{i % 10}"}
            chain.append(conn, "inbound", f"message:{i}", content, clock.now())
    yield service
    service.dispose()


def first_problem(service: Service) -> tuple[int | None, str]:
    report = verify_database(service)
    assert not report.ok
    first = report.first
    assert first is not None
    return first.seq, first.what


def forged_at_5(service: Service, prev_hash: str) -> dict[str, object]:
    """A record someone computed correctly for position 5 (the algorithm is public)."""
    at = service.clock.now()
    digest = hashing.content_digest("00" * 16, '{"body":"forged"}')
    record_hash = hashing.record_hash(
        5, "inbound", "message:99", hashing.utc_text(at), digest, prev_hash
    )
    return {
        "seq": 5, "at": at, "kind": "inbound", "ref": "message:99", "content_digest": digest,
        "prev_hash": prev_hash, "record_hash": record_hash, "salt": "00" * 16,
        "content": '{"body":"forged"}',
    }  # fmt: skip


def hash_of(service: Service, seq: int) -> str:
    with service.engine.connect() as conn:
        return str(conn.execute(select(r.c.record_hash).where(r.c.seq == seq)).scalar_one())


def test_an_untouched_chain_verifies(ten: Service) -> None:
    assert verify_database(ten).ok


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        (["UPDATE evidence_records SET ref = 'message:77' WHERE seq = 5"], (5, "changed")),
        (["UPDATE evidence_records SET kind = 'reply' WHERE seq = 5"], (5, "changed")),
        ([EDIT], (5, "changed")),
        (["UPDATE evidence_records SET content = NULL, salt = NULL WHERE seq = 5"], (5, "removed")),
        (["DELETE FROM evidence_records WHERE seq = 5"], (5, "removed")),
        (["DELETE FROM evidence_records WHERE seq = 5", RENUMBER_DOWN], (5, "removed")),
        (["DELETE FROM evidence_records WHERE seq >= 9"], (9, "removed")),
        (
            [
                "UPDATE evidence_records SET seq = -5 WHERE seq = 5",
                "UPDATE evidence_records SET seq = 5 WHERE seq = 6",
                "UPDATE evidence_records SET seq = 6 WHERE seq = -5",
            ],
            (5, "reordered"),
        ),
        (
            [
                *SHIFT_UP,
                "INSERT INTO evidence_records (seq, at, kind, ref, content_digest, prev_hash, "
                "record_hash, salt, content) SELECT 5, at, kind, 'message:99', content_digest, "
                "prev_hash, record_hash, salt, content FROM evidence_records WHERE seq = 6",
            ],
            (5, "inserted"),
        ),
    ],
    ids=[
        "changed-ref", "changed-kind", "changed-content", "content-deleted", "deleted",
        "deleted-renumbered", "tail-truncated", "reordered", "inserted-garbage",
    ],
)  # fmt: skip
def test_tampering_is_found_and_located(
    ten: Service, statements: list[str], expected: tuple[int, str]
) -> None:
    sql(ten, *statements)
    assert first_problem(ten) == expected


def test_an_insert_with_a_valid_hash_is_found(ten: Service) -> None:
    """Even a correctly hashed record slipped in (later ones renumbered) is found."""
    prev = hash_of(ten, 4)
    sql(ten, *SHIFT_UP)
    with ten.engine.begin() as conn:
        conn.execute(r.insert().values(**forged_at_5(ten, prev)))
    assert first_problem(ten) == (5, "inserted")


def test_a_rewritten_and_rehashed_record_is_found(ten: Service) -> None:
    """Change record 5 and fix its hash: record 6 no longer chains to it."""
    forged = forged_at_5(ten, hash_of(ten, 4))
    with ten.engine.begin() as conn:
        conn.execute(update(r).where(r.c.seq == 5).values(**forged))
    assert first_problem(ten) == (5, "changed")


def test_a_rewrite_of_everything_after_is_caught_by_the_checkpoint(ten: Service) -> None:
    """Re-hashing every record from 5 on is self-consistent: the signature is not."""
    checkpoints.take(ten, "periodic")
    prev = hash_of(ten, 4)
    with ten.engine.begin() as conn:
        rows = list(conn.execute(select(r).where(r.c.seq >= 5).order_by(r.c.seq)))
        for row in rows:
            ref = "message:66" if row.seq == 5 else row.ref
            new = hashing.record_hash(
                row.seq, row.kind, ref, hashing.utc_text(row.at), row.content_digest, prev
            )
            conn.execute(
                update(r).where(r.c.seq == row.seq).values(ref=ref, prev_hash=prev, record_hash=new)
            )
            prev = new
        conn.execute(update(evidence_head).values(record_hash=prev))
    seq, what = first_problem(ten)
    assert what == "changed"
    assert seq is not None
    assert seq <= 5


def test_a_forged_checkpoint_signature_is_found(ten: Service) -> None:
    checkpoints.take(ten, "periodic")
    c = evidence_checkpoints
    with ten.engine.begin() as conn:
        conn.execute(update(c).values(head_hash="f" * 64))
    report = verify_database(ten)
    assert {p.what for p in report.problems} >= {"signature"}


def test_the_cli_exits_non_zero_and_names_the_record(
    ten: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql(ten, "DELETE FROM evidence_records WHERE seq = 5")
    monkeypatch.setattr("antirelou.evidence.cli._service", lambda _path: ten)
    result = CliRunner().invoke(evidence, ["verify"])
    assert result.exit_code == 1
    assert "record 5: removed" in result.output
