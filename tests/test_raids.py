"""Raid defence: incidents open and close, held replies, paced release, raiders refused."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, insert, select

from antirelou import budget, floods, models, operations
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.inbound import receive
from antirelou.operations import OperationError
from antirelou.outbox import ReplyStatus
from antirelou.policy import Action, Reason
from antirelou.providers.sandbox import SandboxSender
from antirelou.service import Service
from antirelou.worker import Worker
from tests.helpers import make_settings, replies, sms

INSULTS = [
    "sale pute de féministe",
    "salope va",
    "connasse on va vider ta cagnotte",
    "ferme ta gueule salope",
    "grosse pute",
]


def fr_mobile(i: int) -> str:
    """Distinct French mobiles spread over many blocks of 100 (not a raid-shaped run)."""
    return f"+336{1 + i % 7}{(i * 7919) % 9}{(i * 104729) % 10**6:06d}"


@pytest.fixture
def raid_service(database_url: str, clock: VirtualClock) -> Iterator[Service]:
    settings = make_settings(database_url, budget={"daily_cap": 50, "total": 1000})
    service = Service(settings, make_engine(database_url), clock)
    service.sync_lines()
    yield service
    service.dispose()


def worker_for(service: Service) -> Worker:
    return Worker(service, {"sandbox": SandboxSender()}, deliver_alerts=False)


def incidents(service: Service) -> list[dict[str, object]]:
    with service.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(models.incidents))]


def raid_burst(service: Service, clock: VirtualClock, start: int, count: int) -> None:
    for i in range(start, start + count):
        clock.advance(timedelta(seconds=2))
        receive(service, sms(sender=fr_mobile(1000 + i), body=INSULTS[i % len(INSULTS)]))


def test_abusive_first_text_gets_no_reply(raid_service: Service) -> None:
    receipt = receive(raid_service, sms(sender=fr_mobile(1), body="Sale pute"))
    assert receipt.decision.action is Action.NONE
    assert Reason.ABUSIVE_FIRST_TEXT in receipt.decision.reasons
    # The flag sticks: a polite second text does not earn a reply.
    later = receive(raid_service, sms(sender=fr_mobile(1), body="pardon"))
    assert later.decision.action is Action.NONE


def test_copy_paste_cluster_is_refused(raid_service: Service) -> None:
    text = "On va augmenter la dette des feministes ce soir les amis"
    decisions = [
        receive(raid_service, sms(sender=fr_mobile(i), body=text + "!" * i)).decision
        for i in range(5)
    ]
    assert [d.action for d in decisions[:2]] == [Action.REPLY, Action.REPLY]
    assert all(Reason.COPY_PASTE in d.reasons for d in decisions[2:])


def test_supporters_writing_the_same_kind_words_are_answered_outside_a_raid(
    raid_service: Service,
) -> None:
    text = "Trop bien cette idée, bravo pour le numéro anti-relou"
    decisions = [
        receive(raid_service, sms(sender=fr_mobile(i), body=text + "!" * i)).decision
        for i in range(5)
    ]
    assert all(d.action is Action.REPLY for d in decisions)


def test_during_a_raid_every_pasted_text_is_refused(raid_service: Service) -> None:
    operations.open_incident(raid_service, "+33939000021", "alice", "forum thread")
    text = "Trop bien cette idée, bravo pour le numéro anti-relou"
    decisions = [
        receive(raid_service, sms(sender=fr_mobile(i), body=text + "!" * i)).decision
        for i in range(5)
    ]
    assert all(Reason.COPY_PASTE in d.reasons for d in decisions[2:])
    assert all(d.action is Action.NONE for d in decisions[2:])


SWARM_TEXT = "Salut ! C'est Julien tu fais quoi ce week-end ?"


def pasted_during_a_raid(service: Service, sender: str) -> None:
    """Open an incident, let a swarm paste one text, and `sender` send it too."""
    operations.open_incident(service, "+33939000021", "alice", "swarm")
    for i in range(4):
        receive(service, sms(sender=fr_mobile(100 + i), body=SWARM_TEXT))
    first = receive(service, sms(sender=sender, body=SWARM_TEXT.replace("Julien", "Maxime")))
    assert first.decision.action is Action.NONE
    assert first.decision.reasons == (Reason.COPY_PASTE,)


def test_a_man_who_writes_back_in_his_own_words_loses_the_paste_mark(
    raid_service: Service,
) -> None:
    pasted_during_a_raid(raid_service, fr_mobile(1))
    later = receive(raid_service, sms(sender=fr_mobile(1), body="Tu réponds pas ?"))
    assert later.decision.action is Action.HOLD  # held like any sender during the raid
    assert later.decision.reasons == (Reason.FIRST_IN_WINDOW, Reason.HELD_INCIDENT)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (SWARM_TEXT.replace("Julien", "Kevin"), Reason.COPY_PASTE),  # pastes again
        ("Tu réponds pas salope ?", Reason.COPY_PASTE),  # writes back, abusively
    ],
)
def test_pasting_again_or_insulting_keeps_the_paste_mark(
    raid_service: Service, body: str, reason: Reason
) -> None:
    pasted_during_a_raid(raid_service, fr_mobile(1))
    later = receive(raid_service, sms(sender=fr_mobile(1), body=body))
    assert later.decision.action is Action.NONE
    assert reason in later.decision.reasons


def test_only_a_paste_mark_is_lifted(raid_service: Service) -> None:
    receive(raid_service, sms(sender=fr_mobile(1), body="Sale pute"))
    later = receive(raid_service, sms(sender=fr_mobile(1), body="Tu réponds pas ?"))
    assert later.decision.action is Action.NONE
    assert Reason.ABUSIVE_FIRST_TEXT in later.decision.reasons


def test_trivial_texts_from_many_testers_are_not_a_cluster(raid_service: Service) -> None:
    decisions = [
        receive(raid_service, sms(sender=fr_mobile(i), body="test")).decision for i in range(8)
    ]
    assert all(d.action is Action.REPLY for d in decisions)


def test_number_block_is_refused(raid_service: Service) -> None:
    decisions = [
        receive(raid_service, sms(sender=f"+3375512340{i}", body=f"coucou {i}")).decision
        for i in range(5)
    ]
    assert all(Reason.NUMBER_BLOCK in d.reasons for d in decisions[2:])


def test_raid_opens_an_incident_within_seconds_and_holds_new_senders(
    raid_service: Service, clock: VirtualClock
) -> None:
    receive(raid_service, sms(sender=fr_mobile(1), body="Salut c'est Karim du bar"))
    raid_start = clock.now()
    raid_burst(raid_service, clock, 0, 10)
    (incident,) = incidents(raid_service)
    assert incident["closed_at"] is None
    assert incident["opened_at"] - raid_start <= timedelta(seconds=60)
    assert "hostile_senders" in json.loads(str(incident["signals"]))["signals"]
    genuine = receive(raid_service, sms(sender=fr_mobile(2), body="Coucou, c'est Paul de ce soir"))
    assert genuine.decision.action is Action.HOLD
    assert genuine.decision.reasons == (Reason.FIRST_IN_WINDOW, Reason.HELD_INCIDENT)
    assert genuine.incident_id == incident["id"]
    held = [r for r in replies(raid_service) if r.status == ReplyStatus.HELD]
    assert len(held) == 1
    assert held[0].reserved_micros == 0  # nothing reserved until released


def test_the_text_that_opens_an_incident_is_judged_as_before_it(
    raid_service: Service, clock: VirtualClock
) -> None:
    # A swarm of virtual numbers pasting one polite text: a cluster alone is no proof
    # outside a raid, so the texts are answered until their surge opens an incident. The
    # text that opens it came in with no raid on: it is held like any new sender's, not
    # refused as a pasted one; the next pasted text is refused.
    receipts = []
    for i in range(25):
        clock.advance(timedelta(seconds=2))
        sender = f"+3397{(1000 + i * 7919) % 10**7:07d}"  # FR 09: VoIP, each in its own block
        receipts.append(receive(raid_service, sms(sender=sender, body=SWARM_TEXT)))
    opener = next(i for i, r in enumerate(receipts) if r.incident_id is not None)
    assert all(r.decision.action is Action.REPLY for r in receipts[:opener])
    assert receipts[opener].decision.action is Action.HOLD
    assert Reason.COPY_PASTE not in receipts[opener].decision.reasons
    after = receipts[opener + 1].decision
    assert after.action is Action.NONE
    assert Reason.COPY_PASTE in after.reasons


def test_incident_closes_after_a_calm_and_held_replies_are_released(
    raid_service: Service, clock: VirtualClock
) -> None:
    raid_burst(raid_service, clock, 0, 10)
    receive(raid_service, sms(sender=fr_mobile(2), body="Coucou, c'est Paul de ce soir"))
    worker = worker_for(raid_service)
    worker.tick(force=True)
    assert incidents(raid_service)[0]["closed_at"] is None
    clock.advance(timedelta(minutes=21))
    worker.tick(force=True)
    assert incidents(raid_service)[0]["closed_at"] is not None
    worker.drain()
    sent = [r for r in replies(raid_service) if r.status == ReplyStatus.SENT]
    assert [r.recipient for r in sent][-1] == fr_mobile(2)
    assert sent[-1].released_at is not None


def test_held_raider_is_cancelled_not_released(raid_service: Service, clock: VirtualClock) -> None:
    raid_burst(raid_service, clock, 0, 10)
    receive(raid_service, sms(sender=fr_mobile(3), body="bonsoir"))
    for i in range(8):  # he floods: high velocity
        clock.advance(timedelta(seconds=5))
        receive(raid_service, sms(sender=fr_mobile(3), body=f"alors {i}"))
    clock.advance(timedelta(minutes=30))
    worker = worker_for(raid_service)
    worker.tick(force=True)
    worker.drain()
    reply = next(r for r in replies(raid_service) if r.recipient == fr_mobile(3))
    assert reply.status == ReplyStatus.CANCELLED
    assert reply.error == "raider_while_held"


# Twelve men, twelve different first texts: none of them looks like a copy-paste raid.
GENUINE_TEXTS = (
    "Salut c'est Julien du bar",
    "Coucou, on s'est croisés samedi ?",
    "Bonsoir, Marc, le voisin du 3e",
    "hello c'est moi, tu te souviens ?",
    "Tu rentres bien ?",
    "Hey ! Karim du concert",
    "Bonjour, c'est Thomas pour le vélo",
    "Re, c'était sympa ce soir",
    "On se voit demain au marché ?",
    "Slt c pierre",
    "Alors, ce café, quand ?",
    "Yo c'est Nico, j'ai trouvé ton écharpe",
)


def test_release_is_paced_by_money(database_url: str, clock: VirtualClock) -> None:
    # 1 EUR a day, 50% of it per hour after the incident: 6 replies an hour at 0.07627.
    settings = make_settings(database_url, budget={"daily_cap": 1.0, "total": 1000})
    service = Service(settings, make_engine(database_url), clock)
    service.sync_lines()
    incident = operations.open_incident(service, "+33939000021", "test")
    for i, body in enumerate(GENUINE_TEXTS):
        receive(service, sms(sender=fr_mobile(100 + i), body=body))
    operations.close_incident(service, incident, "test")
    worker = worker_for(service)
    worker.tick(force=True)
    worker.drain()
    assert sum(r.status == ReplyStatus.SENT for r in replies(service)) == 6
    clock.advance(timedelta(hours=1, minutes=1))
    worker.tick(force=True)
    worker.drain()
    assert sum(r.status == ReplyStatus.SENT for r in replies(service)) == 12
    service.dispose()


def test_manual_incident_stays_open_until_closed_by_hand(
    raid_service: Service, clock: VirtualClock
) -> None:
    incident = operations.open_incident(raid_service, "+33939000021", "alice", "forum thread")
    with pytest.raises(operations.OperationError):
        operations.open_incident(raid_service, "+33939000021", "bob")
    clock.advance(timedelta(hours=3))
    worker_for(raid_service).tick(force=True)
    assert incidents(raid_service)[0]["closed_at"] is None
    operations.close_incident(raid_service, incident, "alice")
    row = incidents(raid_service)[0]
    assert row["closed_at"] is not None
    assert row["opened_by"] == "operator:alice"
    with raid_service.engine.connect() as conn:
        actions = [a.action for a in conn.execute(select(models.audit_log))]
    assert actions == ["incident_open", "incident_close"]


def test_pause_stops_every_reply_but_stores_texts(raid_service: Service) -> None:
    receive(raid_service, sms(sender=fr_mobile(5)))
    operations.set_paused(raid_service, "+33939000021", True, "alice", "raid")
    receipt = receive(raid_service, sms(sender=fr_mobile(6)))
    assert receipt.decision.reasons == (Reason.LINE_PAUSED,)
    assert worker_for(raid_service).run_once() == 0  # the queued one waits too
    operations.set_paused(raid_service, "+33939000021", False, "alice")
    assert worker_for(raid_service).drain() == 1


def test_donations_grow_the_pot(database_url: str, clock: VirtualClock) -> None:
    settings = make_settings(database_url, budget={"daily_cap": 10, "total": 0.05})
    service = Service(settings, make_engine(database_url), clock)
    service.sync_lines()
    first = receive(service, sms(sender=fr_mobile(7)))
    assert first.decision.reasons == (Reason.POT_EXHAUSTED,)
    operations.donate(service, 50, "fundraiser", "alice")
    assert receive(service, sms(sender=fr_mobile(8))).decision.action is Action.REPLY
    service.dispose()


def test_a_donation_that_cannot_be_an_amount_is_refused(service: Service) -> None:
    """The CLI and the dashboard form pass floats as typed: "inf", "nan", 40 nines."""
    for euros in (float("inf"), float("-inf"), float("nan"), 1e40, -2e9):
        with pytest.raises(OperationError, match="between"):
            operations.donate(service, euros, "typo", "alice")
    with service.engine.connect() as conn:
        assert budget.pot(conn, service.caps) == service.caps.pot  # nothing was booked


def test_once_per_sender_mode_ignores_raid_signals(database_url: str, clock: VirtualClock) -> None:
    settings = make_settings(database_url, defence={"mode": "once_per_sender"})
    service = Service(settings, make_engine(database_url), clock)
    service.sync_lines()
    assert receive(service, sms(sender=fr_mobile(9), body="salope")).decision.action is Action.REPLY
    service.dispose()


def test_every_text_mode_replies_to_each_text(database_url: str, clock: VirtualClock) -> None:
    settings = make_settings(database_url, defence={"mode": "every_text"})
    service = Service(settings, make_engine(database_url), clock)
    service.sync_lines()
    actions = [
        receive(service, sms(sender=fr_mobile(9), body=f"t{i}")).decision.action for i in range(3)
    ]
    assert actions == [Action.REPLY] * 3
    service.dispose()


def test_an_incident_opened_twice_at_once_is_one_and_the_transaction_goes_on(
    raid_service: Service, clock: VirtualClock
) -> None:
    """Two processes seeing a raid at the same moment: the second insert meets the one-open-
    incident index, gets the first incident back, and its transaction (the text's) still
    commits. On PostgreSQL the failed insert would abort the whole transaction without the
    savepoint around it."""
    from antirelou import floods

    line = raid_service.settings.lines[0].number
    news = floods.IncidentNews()
    with raid_service.engine.begin() as conn:
        first = floods.open_incident(conn, line, clock.now(), "detector", {}, news)
        again = floods.open_incident(conn, line, clock.now(), "detector", {}, news)
        conn.execute(models.lines.update().values(paused=True))  # the transaction goes on
    assert again == first
    assert news.opened == [first]
    assert len(incidents(raid_service)) == 1
    with raid_service.engine.connect() as conn:
        assert conn.execute(select(models.lines.c.paused)).scalar() is True


def test_the_baseline_is_the_days_new_senders_read_once_an_hour(
    raid_service: Service, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every text compares the rate of new senders with the previous 24 hours'. That sum
    changes only when the hour does, so a connection reads it once an hour."""
    line, now = "+33939000021", clock.now()
    hour = floods.hour_of(now)
    reads: list[object] = []
    real = floods.driver_execute

    def counting(conn: Connection, statement: Any, params: Mapping[str, Any]) -> Any:
        if statement is floods._BASELINE:
            reads.append(params)
        return real(conn, statement, params)

    def seed(at: datetime, new_senders: int) -> None:
        row = {"line": line, "hour": at, "shard": 0, "texts": new_senders}
        conn.execute(insert(models.traffic_hours).values(**row, new_senders=new_senders))
        conn.commit()

    monkeypatch.setattr(floods, "driver_execute", counting)
    with raid_service.engine.connect() as conn:
        seed(hour - timedelta(hours=3), 1440)
        seed(hour - timedelta(hours=30), 999)  # more than a day before: not counted
        assert floods._baseline_total(conn, line, now) == 1440
        seed(hour - timedelta(hours=1), 60)  # a past hour changed after it was read
        assert floods._baseline_total(conn, line, now + timedelta(minutes=59)) == 1440
        assert len(reads) == 1
        assert floods._baseline_total(conn, line, hour + timedelta(hours=1)) == 1500
        assert len(reads) == 2
