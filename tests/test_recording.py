"""Sent replies recorded together (recording.py): one transaction for those that waited,
and a sending thread never waits for its reply's record."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, event, select

from antirelou import models, outbox, recording
from antirelou.db import is_sqlite, write_turn
from antirelou.evidence.tables import evidence_records
from antirelou.inbound import receive
from antirelou.outbox import ClaimedReply
from antirelou.recording import Sent, SentRecorder
from antirelou.service import Service
from tests.helpers import counter, replies, sms
from tests.test_cli import wait_for

OWNER = "test-worker"


def claimed(service: Service, count: int) -> list[ClaimedReply]:
    """`count` replies to distinct senders, claimed as a worker's round would."""
    for n in range(count):
        # Each from a block of numbers of its own: a block of senders looks like a raid.
        receive(service, sms(sender=f"+336{n + 1}2345678", body=f"salut {n}"))
    with service.engine.begin() as conn:
        return outbox.claim_due(
            conn,
            now=service.clock.now(),
            owner=OWNER,
            lease=timedelta(seconds=60),
            limit=count,
        )


def test_replies_sent_while_the_turn_is_taken_are_recorded_in_one_transaction(
    service: Service,
) -> None:
    leased = claimed(service, 6)
    assert len(leased) == 6
    recorder = SentRecorder(service.engine, OWNER, "EUR")
    commits: list[int] = []
    event.listen(service.engine, "commit", lambda _conn: commits.append(1))
    now = service.clock.now()
    threads = [
        threading.Thread(target=recorder.record, args=(Sent(reply, f"SM{reply.id:032x}", 0, now),))
        for reply in leased
    ]
    with write_turn(service.engine):  # the web's intake, in the middle of a batch
        for thread in threads:
            thread.start()
        if is_sqlite(service.engine):
            # Five threads hand their reply over and go back to sending; one waits to record.
            waiting = lambda: sum(thread.is_alive() for thread in threads)  # noqa: E731
            wait_for(lambda: waiting() == 1, timeout=10, why="the senders not to wait")
            assert commits == []
    recorder.flush()
    for thread in threads:
        thread.join(10)
    rows = replies(service)
    assert [row.status for row in rows] == ["sent"] * 6
    assert all(row.provider_message_id for row in rows)
    if is_sqlite(service.engine):
        assert commits == [1], "six records, one transaction"


def test_a_record_that_fails_leaves_the_reply_leased_and_the_others_recorded(
    service: Service,
) -> None:
    first, second = claimed(service, 2)
    recorder = SentRecorder(service.engine, OWNER, "EUR")
    now = service.clock.now()
    with service.engine.begin() as conn:  # the first one's lease went to another worker
        conn.execute(
            models.replies.update()
            .where(models.replies.c.id == first.id)
            .values(lease_owner="someone-else")
        )
    recorder.record(Sent(first, "SM" + "1" * 32, None, now))
    recorder.record(Sent(second, "SM" + "2" * 32, None, now))
    recorder.flush()
    statuses = {row.id: row.status for row in replies(service)}
    assert statuses == {first.id: "sending", second.id: "sent"}


def test_a_record_that_fails_midway_leaves_nothing_of_it_alone_or_in_a_batch(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reply recorded alone has no savepoint of its own: its transaction is rolled back
    instead, so it too leaves no half record (sent, but its money or evidence missing)."""
    alone, first, second = claimed(service, 3)
    recorder = SentRecorder(service.engine, OWNER, "EUR")
    now = service.clock.now()
    failing = {"SM" + "a" * 32, "SM" + "b" * 32}
    adopt = recording.adopt_early_statuses

    def fail_for_some(conn: Connection, provider_id: str, *args: Any) -> None:
        if provider_id in failing:  # after mark_sent wrote the status, spend and evidence
            raise RuntimeError("the database went away")
        adopt(conn, provider_id, *args)

    monkeypatch.setattr(recording, "adopt_early_statuses", fail_for_some)
    recorder.record(Sent(alone, "SM" + "a" * 32, None, now))  # a batch of one
    recorder._waiting = [Sent(first, "SM" + "b" * 32, None, now)]  # two waiting together
    recorder.record(Sent(second, "SM" + "c" * 32, None, now))
    recorder.flush()
    statuses = {row.id: row.status for row in replies(service)}
    assert statuses == {alone.id: "sending", first.id: "sending", second.id: "sent"}
    assert counter(service, "total") == (76_270, 2 * 76_270)  # one spent, two still reserved
    with service.engine.connect() as conn:
        kinds = conn.execute(select(evidence_records.c.kind)).scalars().all()
    assert kinds.count("reply") == 1
