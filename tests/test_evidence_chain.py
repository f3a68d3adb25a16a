"""The chain itself: append() links records, seqs stay gapless, content is salted."""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from antirelou.clock import VirtualClock
from antirelou.evidence import chain, hashing
from antirelou.evidence.tables import evidence_records
from antirelou.evidence.verify import verify_database
from antirelou.service import Service
from tests.evidence_kit import evidence_service

r = evidence_records


@pytest.fixture
def ev(database_url: str, clock: VirtualClock, tmp_path: Path) -> Iterator[Service]:
    service = evidence_service(database_url, clock, tmp_path)
    yield service
    service.dispose()


def add(service: Service, n: int, kind: str = "inbound") -> list[int]:
    seqs = []
    for i in range(n):
        with service.engine.begin() as conn:
            content = {"body": f"texte {i}", "at": service.clock.now()}
            seqs.append(chain.append(conn, kind, f"message:{i + 1}", content, service.clock.now()))
    return seqs


def rows(service: Service) -> list[object]:
    with service.engine.connect() as conn:
        return list(conn.execute(select(r).order_by(r.c.seq)))


def test_records_are_chained_and_verify(ev: Service) -> None:
    assert add(ev, 5) == [1, 2, 3, 4, 5]
    stored = rows(ev)
    assert stored[0].prev_hash == hashing.GENESIS
    for before, after in itertools.pairwise(stored):
        assert after.prev_hash == before.record_hash
    report = verify_database(ev)
    assert report.ok, report.problems
    assert report.records == 5


def test_hashes_are_sha256_of_plain_text(ev: Service) -> None:
    """What VERIFY.md tells people to recompute with sha256sum is what is stored."""
    add(ev, 1)
    (row,) = rows(ev)
    at = hashing.utc_text(row.at)
    line = f"{row.seq}|{row.kind}|{row.ref}|{at}|{row.content_digest}|{row.prev_hash}"
    assert hashlib.sha256(line.encode()).hexdigest() == row.record_hash
    assert hashlib.sha256((row.salt + row.content).encode()).hexdigest() == row.content_digest


def test_same_content_gets_different_digests(ev: Service) -> None:
    """A per-record salt: a phone number cannot be found by hashing candidates."""
    with ev.engine.begin() as conn:
        for _ in range(2):
            chain.append(conn, "call", "call:1", {"caller": "+33612345678"}, ev.clock.now())
    first, second = rows(ev)
    assert first.content == second.content
    assert first.content_digest != second.content_digest


def test_a_rolled_back_append_leaves_no_gap(ev: Service) -> None:
    add(ev, 2)
    conn = ev.engine.connect()
    transaction = conn.begin()
    chain.append(conn, "inbound", "message:9", {"body": "x"}, ev.clock.now())
    transaction.rollback()  # the caller's transaction fails
    conn.close()
    assert add(ev, 1) == [3]
    assert verify_database(ev).ok


def test_kind_and_ref_are_checked(ev: Service) -> None:
    with ev.engine.begin() as conn:
        with pytest.raises(ValueError, match="kind"):
            chain.append(conn, "gossip", "message:1", {}, ev.clock.now())
        with pytest.raises(ValueError, match="ref"):
            chain.append(conn, "inbound", "message,1", {}, ev.clock.now())


def test_concurrent_appends_stay_gapless(ev: Service, clock: VirtualClock) -> None:
    """Writers in parallel (real concurrency on PostgreSQL): seqs 1..N, one chain."""
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for i in range(15):
                with ev.engine.begin() as conn:
                    content = {"worker": worker, "i": i}
                    chain.append(conn, "inbound", f"message:{worker}-{i}", content, clock.now())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with ev.engine.connect() as conn:
        count, low, high = conn.execute(
            select(func.count(), func.min(r.c.seq), func.max(r.c.seq))
        ).one()
    assert (count, low, high) == (90, 1, 90)
    assert verify_database(ev).ok


def test_times_are_hashed(ev: Service, clock: VirtualClock) -> None:
    """Moving a record in time breaks it: times stay provable after content is purged."""
    add(ev, 3)
    clock.advance(timedelta(hours=1))
    with ev.engine.begin() as conn:
        conn.execute(r.update().where(r.c.seq == 2).values(at=clock.now()))
    first = verify_database(ev).first
    assert first is not None
    assert (first.seq, first.what) == (2, "changed")


def test_ranges_round_trip() -> None:
    assert hashing.ranges_text([5, 1, 2, 3, 9, 10]) == "1-3,5,9-10"
    assert hashing.parse_ranges("1-3,5,9-10") == [(1, 3), (5, 5), (9, 10)]
    assert hashing.ranges_text([]) == ""
