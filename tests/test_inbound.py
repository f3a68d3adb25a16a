"""receive(): stored once, decided once, replied once, money reserved."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, func, select

from antirelou import budget, models
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.evidence.chain import head
from antirelou.evidence.verify import verify_database
from antirelou.inbound import receive
from antirelou.policy import Action, Reason
from antirelou.service import Service
from tests.helpers import count, counter, make_settings, replies, sms


def test_one_message_id_posted_twenty_times_gives_one_reply(service: Service) -> None:
    text = sms(provider_id="SM" + "a" * 32)
    receipts = [receive(service, text) for _ in range(20)]
    assert [r.duplicate for r in receipts] == [False] + [True] * 19
    assert count(service, models.messages) == 1
    assert len(replies(service)) == 1
    assert count(service, models.ledger, models.ledger.c.kind == "inbound") == 1


def test_twenty_texts_from_one_sender_give_one_reply(service: Service) -> None:
    receipts = [receive(service, sms(body=f"text {i}")) for i in range(20)]
    assert receipts[0].decision.action is Action.REPLY
    assert all(Reason.ALREADY_REPLIED in r.decision.reasons for r in receipts[1:])
    assert all(r.decision.action is Action.NONE for r in receipts[1:])
    assert count(service, models.messages) == 20
    assert len(replies(service)) == 1


def test_message_is_stored_with_raw_parameters_and_reasons(service: Service) -> None:
    receipt = receive(service, sms(body="Coucou"))
    with service.engine.connect() as conn:
        row = conn.execute(select(models.messages)).one()
    assert row.id == receipt.message_id
    assert (row.sender, row.line, row.body, row.decision) == (
        "+33612345678",
        "+33939000021",
        "Coucou",
        "reply",
    )
    assert json.loads(row.raw) == {"Body": "Coucou"}
    assert json.loads(row.reasons) == ["first_text_in_window"]
    assert row.received_at == service.clock.now()


def test_reply_window_reopens_after_it_ends(service: Service, clock: VirtualClock) -> None:
    assert receive(service, sms()).decision.action is Action.REPLY
    clock.advance(timedelta(days=29, hours=23))
    assert receive(service, sms()).decision.action is Action.NONE
    clock.advance(timedelta(hours=1))
    assert receive(service, sms()).decision.action is Action.REPLY
    assert len(replies(service)) == 2


def test_concurrent_duplicates_cannot_both_win(service: Service) -> None:
    """Many threads, many texts from the same sender at once: one reply."""
    barrier = threading.Barrier(8)
    results = []

    def send(i: int) -> None:
        barrier.wait()
        for j in range(5):
            results.append(receive(service, sms(body=f"{i}-{j}")).decision.action)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(Action.REPLY) == 1
    assert len(replies(service)) == 1


def test_opt_out_is_recorded_and_respected_until_start(service: Service) -> None:
    assert receive(service, sms(body="STOP")).decision.reasons == (Reason.OPT_OUT_KEYWORD,)
    assert receive(service, sms(body="hello")).decision.reasons == (Reason.OPTED_OUT,)
    assert not replies(service)
    assert receive(service, sms(body="START")).decision.action is Action.REPLY


def test_senders_that_must_never_be_answered(service: Service) -> None:
    for sender in ["36180", "MYSHOP", "+33899123456", "+14155550123", "+33939000021"]:
        assert receive(service, sms(sender=sender)).decision.action is Action.NONE
    assert not replies(service)


def test_reply_is_reserved_against_the_budget(service: Service) -> None:
    receipt = receive(service, sms())
    reply = replies(service)[0]
    assert reply.id == receipt.reply_id
    assert (reply.segments, reply.encoding, reply.reserved_micros) == (1, "GSM-7", 76_270)
    assert counter(service, "day:2017-10-27") == (0, 76_270)
    assert counter(service, "total") == (0, 76_270)


def test_a_reply_is_reserved_on_the_budget_read_that_decided_it(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One read of the totals a text, not a second one to reserve (a statement less, a
    round trip less to PostgreSQL, on every text that gets a reply)."""
    reads: list[object] = []
    real = budget.driver_execute

    def counting(conn: Connection, statement: Any, params: Mapping[str, Any]) -> Any:
        if "day" in params:  # the totals are read for a day; the writes bind its key
            reads.append(statement)
        return real(conn, statement, params)

    monkeypatch.setattr(budget, "driver_execute", counting)
    assert receive(service, sms()).decision.action is Action.REPLY
    assert len(reads) == 1
    assert counter(service, "total") == (0, 76_270)  # reserved all the same


def test_daily_cap_reached_sends_nothing_and_says_why(
    database_url: str, clock: VirtualClock
) -> None:
    # 0.2 EUR a day: two replies at 0.07627, not three.
    settings = make_settings(database_url, budget={"daily_cap": 0.2, "total": 100})
    service = Service(settings, make_engine(database_url), clock)
    service.sync_lines()
    decisions = [receive(service, sms(sender=f"+3361{i}234567")).decision for i in range(4)]
    assert [d.action for d in decisions] == [Action.REPLY, Action.REPLY, Action.NONE, Action.NONE]
    assert decisions[2].reasons == (Reason.DAILY_CAP,)
    # A refused sender is not marked as answered: tomorrow he still gets his one reply.
    clock.advance(timedelta(days=1))
    assert receive(service, sms(sender="+33612234567")).decision.action is Action.REPLY
    service.dispose()


def test_caps_hold_under_concurrency(database_url: str, clock: VirtualClock) -> None:
    settings = make_settings(database_url, budget={"daily_cap": 1.0, "total": 100})
    service = Service(settings, make_engine(database_url), clock)
    service.sync_lines()
    barrier = threading.Barrier(6)

    def burst(i: int) -> None:
        barrier.wait()
        for j in range(10):
            receive(service, sms(sender=f"+336{i:02d}{j:02d}1234"))

    threads = [threading.Thread(target=burst, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(replies(service)) == 13  # floor(1.0 / 0.07627)
    spent, reserved = counter(service, "day:2017-10-27")
    assert spent + reserved <= 1_000_000
    service.dispose()


def test_unknown_line_is_stored_but_not_answered(service: Service) -> None:
    receipt = receive(service, replace(sms(), recipient="+33939000099"))
    assert receipt.decision.reasons == (Reason.UNKNOWN_LINE,)
    assert count(service, models.messages) == 1


def test_a_long_text_is_billed_for_each_of_its_parts(service: Service) -> None:
    """Providers bill a received text per part: a raid of long texts drains the pot by its
    parts, and the books must say so (GSM-7: 160 in one part, 153 a part beyond; UCS-2,
    one emoji is enough: 70, then 67)."""
    bodies = ["a" * 160, "a" * 161, "a" * 459, "\N{WINKING FACE}" * 35, "\N{WINKING FACE}" * 36]
    for i, body in enumerate(bodies):
        receive(service, sms(provider_id=f"SM{i:032d}", sender=f"+336123456{i:02d}", body=body))
    inbound = round(service.settings.pricing.inbound * 1_000_000)
    with service.engine.connect() as conn:
        billed = conn.execute(
            select(models.ledger.c.amount_micros)
            .where(models.ledger.c.kind == "inbound")
            .order_by(models.ledger.c.message_id)
        ).scalars()
        assert [amount // inbound for amount in billed] == [1, 2, 3, 1, 2]
        assert budget.inbound_spent(conn) == 9 * inbound


def test_each_text_leaves_its_counters_ledger_and_evidence(
    service: Service, clock: VirtualClock
) -> None:
    """On PostgreSQL some of these writes share a statement (dbutil.written_together): each
    must still land, with this text's values, on every database."""
    senders = ["+33612345601", "+33612345602", "+33612345601", "+33612345603"]
    for i, sender in enumerate(senders):
        receive(service, sms(provider_id=f"SM{i:032d}", sender=sender))
        clock.advance(timedelta(seconds=25))  # 3 ten-second buckets apart, one hour
    inbound = service.settings.pricing.inbound * 1_000_000
    t, h, c = models.traffic, models.traffic_hours, models.budget_counters
    with service.engine.connect() as conn:
        buckets = conn.execute(select(t.c.texts, t.c.new_senders).order_by(t.c.bucket)).all()
        hours = conn.execute(select(func.sum(h.c.texts), func.sum(h.c.new_senders))).one()
        shards = conn.execute(
            select(func.sum(c.c.spent_micros)).where(c.c.key.like("inbound:%"))
        ).scalar_one()
        ledger = conn.execute(
            select(models.ledger.c.message_id, models.ledger.c.amount_micros)
            .where(models.ledger.c.kind == "inbound")
            .order_by(models.ledger.c.message_id)
        ).all()
    assert [tuple(b) for b in buckets] == [(1, 1), (1, 1), (1, 0), (1, 1)]
    assert tuple(hours) == (4, 3)
    assert [amount for _, amount in ledger] == [round(inbound)] * 4
    assert len({message for message, _ in ledger}) == 4
    assert shards == round(inbound) * 4
    report = verify_database(service)
    assert report.ok
    assert report.records >= 4
    with service.engine.connect() as conn:
        assert head(conn)[0] == report.records  # the head moved with each record
