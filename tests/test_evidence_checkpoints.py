"""Signed checkpoints: the key outside the database, the cadence, and RFC 3161 timestamps
from a local authority (`openssl ts` on 127.0.0.1, never the internet)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from antirelou.clock import VirtualClock
from antirelou.evidence import chain, checkpoints, keys, timestamps
from antirelou.evidence.cli import evidence
from antirelou.evidence.hashing import parse_statement
from antirelou.evidence.tables import evidence_checkpoints
from antirelou.evidence.verify import verify_database
from antirelou.service import Service
from tests.evidence_kit import evidence_service, have, local_authority

c = evidence_checkpoints
pytestmark = pytest.mark.skipif(not have("openssl"), reason="openssl is needed")


@pytest.fixture
def ev(database_url: str, clock: VirtualClock, tmp_path: Path) -> Iterator[Service]:
    service = evidence_service(database_url, clock, tmp_path)
    yield service
    service.dispose()


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    with local_authority(tmp_path_factory.mktemp("tsa")) as found:
        yield found


def add(service: Service, kind: str = "inbound", ref: str = "message:1") -> None:
    with service.engine.begin() as conn:
        chain.append(conn, kind, ref, {"n": 1}, service.clock.now())


def count(service: Service) -> int:
    with service.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(c)).scalar_one())


def test_the_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "var" / "evidence.key"
    key = keys.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.public_raw(keys.load_or_create(path)) == keys.public_raw(key)
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "shared.key"
    keys.load_or_create(path)
    keys._cached.cache_clear()
    os.chmod(path, 0o644)
    with pytest.raises(keys.SigningKeyError, match="chmod 600"):
        keys.load_or_create(path)


def test_checkpoints_follow_the_cadence(ev: Service, clock: VirtualClock) -> None:
    assert checkpoints.maybe_checkpoint(ev, clock.now()) is None  # nothing to sign yet
    add(ev)
    first = checkpoints.maybe_checkpoint(ev, clock.now())
    assert first is not None
    assert (first.seq, first.reason) == (1, "periodic")
    add(ev)
    clock.advance(timedelta(minutes=2))
    assert checkpoints.maybe_checkpoint(ev, clock.now()) is None  # not due yet
    clock.advance(timedelta(minutes=3))
    assert checkpoints.maybe_checkpoint(ev, clock.now()) is not None
    clock.advance(timedelta(minutes=10))
    assert checkpoints.maybe_checkpoint(ev, clock.now()) is None  # the chain did not grow


def test_an_incident_record_is_checkpointed_at_once(ev: Service, clock: VirtualClock) -> None:
    add(ev)
    checkpoints.maybe_checkpoint(ev, clock.now())
    add(ev, "incident_opened", "incident:1")
    clock.advance(timedelta(seconds=15))
    taken = checkpoints.maybe_checkpoint(ev, clock.now())
    assert taken is not None
    assert (taken.seq, taken.reason) == (2, "incident")


def test_a_checkpoint_states_and_signs_the_head(ev: Service) -> None:
    add(ev)
    taken = checkpoints.take(ev, "manual")
    stated = parse_statement(taken.statement)
    with ev.engine.connect() as conn:
        assert (stated.seq, stated.head_hash) == chain.head(conn)
    public = keys.from_hex(taken.public_key)
    assert keys.signature_ok(public, bytes.fromhex(taken.signature), taken.statement)
    assert verify_database(ev).ok


def test_checkpoints_are_timestamped_by_the_authority(
    database_url: str, clock: VirtualClock, tmp_path: Path, authority: tuple[str, Path]
) -> None:
    url, ca = authority
    service = evidence_service(database_url, clock, tmp_path, tsa_url=url, tsa_ca=str(ca))
    add(service)
    taken = checkpoints.take(service, "manual")
    token = checkpoints.decode_token(taken)
    assert token is not None
    assert timestamps.verify(token, taken.statement, timestamps.load_roots(ca))
    report = verify_database(service)
    assert report.ok, report.problems
    assert report.stamped == 1
    # a token for other data, or a changed one, is refused
    with pytest.raises(timestamps.TimestampError):
        timestamps.verify(token, b"another statement", timestamps.load_roots(ca))
    with service.engine.begin() as conn:
        conn.execute(update(c).values(tsa_token=checkpoints.decode_token(taken) and "AAAA"))
    assert {p.what for p in verify_database(service).problems} == {"timestamp"}
    service.dispose()


def test_a_timestamp_that_fails_is_retried_later(
    database_url: str, clock: VirtualClock, tmp_path: Path, authority: tuple[str, Path]
) -> None:
    dead = evidence_service(database_url, clock, tmp_path, tsa_url="http://127.0.0.1:9/tsr")
    add(dead)
    assert checkpoints.maybe_checkpoint(dead, clock.now()) is not None  # signed anyway
    with dead.engine.connect() as conn:
        assert conn.execute(select(c.c.tsa_token, c.c.tsa_attempts)).one() == (None, 1)
    dead.dispose()
    url, ca = authority
    alive = evidence_service(database_url, clock, tmp_path, tsa_url=url, tsa_ca=str(ca))
    with alive.engine.begin() as conn:  # the authority's address was corrected
        conn.execute(update(c).values(tsa_url=url))
    assert checkpoints.maybe_checkpoint(alive, clock.now()) is None  # nothing new to sign...
    with alive.engine.connect() as conn:  # ...but the pending stamp was retried
        assert conn.execute(select(c.c.tsa_token)).scalar_one() is not None
    alive.dispose()


def test_the_cli_prints_the_public_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANTIRELOU_CONFIG", raising=False)
    result = CliRunner().invoke(evidence, ["key"])
    assert result.exit_code == 0, result.output
    assert "BEGIN PUBLIC KEY" in result.output
    assert "fingerprint: SHA256:" in result.output
    assert stat.S_IMODE((tmp_path / "var" / "evidence.key").stat().st_mode) == 0o600
