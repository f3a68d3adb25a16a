"""Retention: personal data goes after its period, legal holds and incidents keep theirs,
aggregates stay, and the chain still verifies afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from antirelou import models
from antirelou.clock import VirtualClock
from antirelou.evidence import checkpoints, retention
from antirelou.evidence.cli import retention as retention_cli
from antirelou.evidence.tables import evidence_records
from antirelou.evidence.verify import verify_database
from antirelou.operations import close_incident
from antirelou.service import Service
from antirelou.web.actions import set_incident_hold, set_sender_hold
from tests.evidence_kit import evidence_service, open_incident, quiet_hour, raid, sql, text_in
from tests.helpers import LINE

m, r = models.messages, evidence_records


@pytest.fixture
def ev(database_url: str, clock: VirtualClock, tmp_path: Path) -> Iterator[Service]:
    service = evidence_service(database_url, clock, tmp_path)
    yield service
    service.dispose()


def kept_senders(service: Service) -> set[str]:
    with service.engine.connect() as conn:
        return set(conn.execute(select(m.c.sender).where(m.c.sender != "")).scalars())


def purged_contents(service: Service) -> int:
    with service.engine.connect() as conn:
        query = select(func.count()).where(r.c.content.is_(None))
        return int(conn.execute(query).scalar_one())


def test_old_texts_are_purged_and_the_chain_still_verifies(
    ev: Service, clock: VirtualClock
) -> None:
    quiet_hour(ev, clock, 5)
    checkpoints.take(ev, "periodic")
    clock.advance(timedelta(days=31))
    recent = text_in(ev, "+33612999999", "Je viens d'avoir ton numéro")
    done = retention.run(ev)
    assert (done.messages, done.records) == (5, 5)
    assert kept_senders(ev) == {"+33612999999"}
    with ev.engine.connect() as conn:
        old = conn.execute(select(m).where(m.c.id != recent.message_id)).all()
    assert {(row.body, row.raw, row.sender) for row in old} == {("", "{}", "")}
    assert {row.decision for row in old} <= {"reply", "hold", "none"}  # aggregates stay
    assert purged_contents(ev) == 5
    report = verify_database(ev)
    assert report.ok, report.problems
    assert report.purged == 5
    assert retention.run(ev).records == 0  # nothing left to purge


def test_a_deletion_is_not_a_purge(ev: Service, clock: VirtualClock) -> None:
    quiet_hour(ev, clock, 3)
    sql(ev, "UPDATE evidence_records SET content = NULL, salt = NULL WHERE seq = 2")
    first = verify_database(ev).first
    assert first is not None
    assert (first.seq, first.what) == (2, "removed")


def test_incidents_and_legal_holds_keep_their_data(ev: Service, clock: VirtualClock) -> None:
    quiet_hour(ev, clock, 3)  # +33612000000..02
    incident = open_incident(ev)
    raid(ev, clock, senders=3)  # +33699000000..02
    close_incident(ev, incident, "tester")
    set_sender_hold(ev, LINE, "+33612000001", True, "plainte n° 123", "tester")
    clock.advance(timedelta(days=40))
    retention.run(ev)
    raiders = {f"+336990000{n:02d}" for n in range(3)}
    assert kept_senders(ev) == raiders | {"+33612000001"}  # the incident is recent enough
    clock.advance(timedelta(days=400))
    retention.run(ev)
    assert kept_senders(ev) == {"+33612000001"}  # the incident's time ran out; the hold did not
    assert verify_database(ev).ok


def test_an_incident_under_legal_hold_is_kept_for_good(ev: Service, clock: VirtualClock) -> None:
    incident = open_incident(ev)
    raid(ev, clock, senders=2)
    close_incident(ev, incident, "tester")
    set_incident_hold(ev, incident, True, "tester")
    clock.advance(timedelta(days=1000))
    retention.run(ev)
    assert len(kept_senders(ev)) == 2


def test_dedup_state_goes_after_its_own_period(ev: Service, clock: VirtualClock) -> None:
    quiet_hour(ev, clock, 2)
    sql(ev, "UPDATE senders SET opted_out_at = last_seen WHERE number = '+33612000001'")
    clock.advance(timedelta(days=31))
    assert retention.run(ev).senders == 0
    clock.advance(timedelta(days=60))
    assert retention.run(ev).senders == 1
    with ev.engine.connect() as conn:
        left = set(conn.execute(select(models.senders.c.number)).scalars())
    assert left == {"+33612000001"}  # an opt-out outlives retention


def test_the_worker_runs_it_once_a_day(ev: Service, clock: VirtualClock) -> None:
    quiet_hour(ev, clock, 1)
    clock.advance(timedelta(days=31))
    assert retention.maybe_run(ev, clock.now()) is not None
    assert retention.maybe_run(ev, clock.now() + timedelta(hours=1)) is None
    assert retention.maybe_run(ev, clock.now() + timedelta(days=1)) is not None


def test_the_cli_runs_retention(
    ev: Service, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    quiet_hour(ev, clock, 2)
    clock.advance(timedelta(days=31))
    monkeypatch.setattr("antirelou.evidence.cli._service", lambda _path: ev)
    result = CliRunner().invoke(retention_cli, ["run"])
    assert result.exit_code == 0, result.output
    assert "2 messages" in result.output
    held = CliRunner().invoke(retention_cli, ["hold", "--sender", "+33699999999"])
    assert held.exit_code == 1  # unknown sender


def test_ip_addresses_in_the_audit_log_go_after_their_period(
    ev: Service, clock: VirtualClock
) -> None:
    """Logins (and the new-network alert they raised) lose their addresses after 180 days,
    with the evidence content of those entries; who did what and when stays, and so does
    every entry without an address. The chain still verifies."""
    import json

    from antirelou.operations import set_paused
    from antirelou.web import places
    from antirelou.web.accounts import Role, create_user, find_user

    create_user(ev, "op@example.org", "correct horse battery", Role.ADMIN, "test")
    with ev.engine.connect() as conn:
        user = find_user(conn, "op@example.org")
    assert user is not None
    places.record_login(ev, user, "203.0.113.5")
    places.record_login(ev, user, "198.51.100.9")  # another network: audited and alerted
    set_paused(ev, LINE, True, "web:op@example.org", "a test")
    clock.advance(timedelta(days=181))
    places.record_login(ev, user, "198.51.100.10")  # recent: kept
    done = retention.run(ev)
    assert done.addresses == done.records == 3  # two logins, one new-network entry
    log = models.audit_log
    with ev.engine.connect() as conn:
        rows = conn.execute(select(log.c.action, log.c.details).order_by(log.c.id)).all()
        payloads = conn.execute(select(models.alerts.c.payload)).scalars().all()
    details = [(action, json.loads(text)) for action, text in rows]
    logins = [d for action, d in details if action == "login"]
    assert [d.get("address") for d in logins] == [None, None, "198.51.100.10"]
    assert logins[1] == {"new_network": True}  # what My account needs stays
    assert ("user_add", {"role": "admin"}) in details
    assert ("pause", {"reason": "a test"}) in details
    assert not any("198.51.100.9" in p or "203.0.113.5" in p for p in payloads)
    assert any("login_new_network" in p for p in payloads)  # the alert row stays
    report = verify_database(ev)
    assert report.ok, report.problems
    assert report.purged == 3
    assert retention.run(ev).addresses == 0


def test_addresses_are_kept_as_long_as_new_network_alerts_look_back() -> None:
    from pydantic import ValidationError

    from antirelou.evidence.settings import EvidenceSettings

    with pytest.raises(ValidationError, match="at least 90d"):
        EvidenceSettings(retention_addresses=timedelta(days=30))
