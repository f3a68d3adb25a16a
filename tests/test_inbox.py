"""Queued intake: a webhook parks its text durably, the worker decides it, once.

Through the real app (TestClient) and the real worker and Twilio adapter, sending to a
fake Twilio API over HTTP, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from sqlalchemy import event, select
from starlette.testclient import TestClient

from antirelou import inbox, migrate, models
from antirelou.cli import main
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.inbound import receive_in
from antirelou.providers.base import OutgoingSms, SendResult
from antirelou.providers.sandbox import SandboxSender
from antirelou.service import Service
from antirelou.web.app import create_app
from antirelou.web.parking import LoopParking
from antirelou.worker import Worker
from tests.fakes.twilio_api import FakeTwilio
from tests.helpers import LINE, count, inbound_billed, make_settings, replies, sms
from tests.test_webhooks import (
    ACCOUNT_SID,
    SMS_PATH,
    TOKEN,
    inbound_params,
    message_sid,
    messages,
    post_signed,
    twilio_worker,
)

METRICS_TOKEN = "scrape-me"


def _queued(database_url: str, clock: VirtualClock) -> Service:
    settings = make_settings(
        database_url,
        lines=[{"number": LINE, "provider": "twilio"}],
        twilio={"account_sid": ACCOUNT_SID, "auth_token": TOKEN},
        web={"intake": "queued", "metrics_token": METRICS_TOKEN},
    )
    service = Service(settings, make_engine(database_url), clock)
    service.sync_lines()
    return service


@pytest.fixture
def queued_service(database_url: str, clock: VirtualClock) -> Iterator[Service]:
    """A Twilio line whose webhooks only park texts (`[web] intake = "queued"`)."""
    service = _queued(database_url, clock)
    yield service
    service.dispose()


@pytest.fixture
def sqlite_queued(tmp_path: Path, clock: VirtualClock) -> Iterator[Service]:
    """The same on SQLite alone, where parked texts have a file of their own."""
    url = f"sqlite:///{tmp_path / 'antirelou.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    service = _queued(url, clock)
    yield service
    service.dispose()


@pytest.fixture
def queued_app(queued_service: Service) -> FastAPI:
    return create_app(queued_service)


@pytest.fixture
def queued_client(queued_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(queued_app) as test_client:
        yield test_client


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(ACCOUNT_SID, TOKEN) as running:
        yield running


def parked(service: Service) -> list[Any]:
    with inbox.engine_of(service).connect() as conn:
        return list(conn.execute(select(models.inbox).order_by(models.inbox.c.id)))


WORDS = [
    "salut",
    "ça",
    "va",
    "tu",
    "fais",
    "quoi",
    "ce",
    "soir",
    "on",
    "se",
    "voit",
    "demain",
    "au",
    "bar",
    "près",
    "de",
    "la",
    "gare",
    "ou",
    "chez",
    "moi",
]


def text(n: int) -> str:
    """A different, harmless text for each n (no copy-paste cluster between senders)."""
    return " ".join(WORDS[(n * 7 + k * 3) % len(WORDS)] for k in range(1 + n % 5)) + f" {n}"


def sender(n: int) -> str:
    """Numbers far apart: consecutive ones would look like a raid's block of numbers."""
    return f"+336{(12_345_678 + n * 7_919_311) % 100_000_000:08d}"


def test_a_webhook_parks_the_text_and_the_worker_decides_and_replies_once(
    queued_app: FastAPI, queued_client: TestClient, queued_service: Service, fake: FakeTwilio
) -> None:
    woken: list[int] = []
    queued_app.state.antirelou.on_reply.append(lambda: woken.append(1))
    params = inbound_params(message_sid(1))

    response = post_signed(queued_client, SMS_PATH, params)

    assert response.status_code == 200
    assert response.text.endswith("<Response/>")
    (row,) = parked(queued_service)
    assert (row.provider, row.provider_id, row.attempts) == ("twilio", params["MessageSid"], 0)
    assert json.loads(row.sms)["raw"] == params, "every parameter kept, as signed"
    assert messages(queued_service) == [], "not decided yet"
    assert woken, "a worker in the same process is woken at once"

    worker = twilio_worker(fake, queued_service)
    try:
        assert worker.drain() == 2, "one text decided, then its reply sent"
    finally:
        worker.close()

    assert parked(queued_service) == []
    (message,) = messages(queued_service)
    assert (message.provider_id, message.decision) == (params["MessageSid"], "reply")
    assert message.signature_checked is True
    assert [m["to"] for m in fake.messages] == [params["From"]]


def test_the_decision_is_taken_as_of_the_arrival_not_the_worker_round(
    queued_client: TestClient, queued_service: Service, clock: VirtualClock
) -> None:
    arrived = clock.now()
    post_signed(queued_client, SMS_PATH, inbound_params(message_sid(1)))
    clock.advance(timedelta(minutes=7))  # a worker that was down, or far behind
    inbox.decide_parked(queued_service, 10)
    (message,) = messages(queued_service)
    assert message.received_at == arrived
    (reply,) = replies(queued_service)
    assert reply.due_at == arrived


def test_redeliveries_and_many_texts_give_one_reply_per_sender(
    queued_client: TestClient, queued_service: Service, fake: FakeTwilio
) -> None:
    for n in range(30):  # 10 senders, 3 texts each, every webhook delivered twice
        params = inbound_params(message_sid(n), sender=sender(n % 10), body=text(n))
        for _ in range(2):
            assert post_signed(queued_client, SMS_PATH, params).status_code == 200
        if n == 4:  # some decided between deliveries: a later re-delivery parks again
            inbox.decide_parked(queued_service, 100)
    assert len(parked(queued_service)) == 25, "a re-delivery of a waiting text is a no-op"
    worker = twilio_worker(fake, queued_service)
    try:
        worker.drain()
    finally:
        worker.close()
    assert parked(queued_service) == []
    assert count(queued_service, models.messages) == 30
    assert sorted(m["to"] for m in fake.messages) == sorted(sender(n) for n in range(10))


def test_a_text_whose_decision_fails_is_kept_with_its_error_and_spares_the_others(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    with inbox.engine_of(service).begin() as conn:
        for n, body in enumerate(["Coucou", "boom", "Tu rentres bien ?"]):
            inbox.park(conn, sms(sender=sender(n), body=body), service.clock.now())

    def flaky(svc: Service, conn: Any, text: Any, now: Any = None) -> Any:
        receipt = receive_in(svc, conn, text, now)  # written, then undone by the savepoint
        if text.body == "boom":
            raise RuntimeError("a bug while deciding")
        return receipt

    monkeypatch.setattr(inbox, "receive_in", flaky)
    done = inbox.decide_parked(service, 10)
    assert (done.texts, done.replies, done.failed) == (2, 2, 1)
    (kept,) = parked(service)
    assert (json.loads(kept.sms)["body"], kept.attempts) == ("boom", 1)
    assert "RuntimeError: a bug while deciding" in kept.last_error
    assert count(service, models.messages) == 2, "the failed text left nothing but its row"

    for _ in range(inbox.MAX_ATTEMPTS):
        inbox.decide_parked(service, 10)
    state = inbox.state(service)
    assert (state.waiting, state.stuck) == (0, 1), "kept for an operator, not dropped"
    assert len(parked(service)) == 1


def test_nothing_parked_is_lost_when_the_decision_cannot_commit(service: Service) -> None:
    with inbox.engine_of(service).begin() as conn:
        inbox.park(conn, sms(sender=sender(1)), service.clock.now())

    def refuse(_conn: Any) -> None:
        raise OSError("disk full")

    event.listen(service.engine, "commit", refuse)
    with pytest.raises(OSError, match="disk full"):
        inbox.decide_parked(service, 10)
    event.remove(service.engine, "commit", refuse)
    (row,) = parked(service)
    assert row.attempts == 0, "a failed commit is not the text's fault"
    assert count(service, models.messages) == 0
    assert inbox.decide_parked(service, 10).replies == 1
    assert parked(service) == []


def test_texts_parked_before_a_switch_back_to_inline_are_decided_by_the_first_tick(
    service: Service,
) -> None:
    leftovers = inbox.DECIDE_BATCH + 8  # more than one round's worth
    with inbox.engine_of(service).begin() as conn:
        for n in range(leftovers):
            inbox.park(conn, sms(sender=sender(n), body=text(n)), service.clock.now())

    worker = Worker(service, {"sandbox": SandboxSender()}, deliver_alerts=False)
    assert service.settings.web.intake == "inline"
    worker.run_once()
    assert len(parked(service)) == leftovers, "an inline worker's rounds skip the inbox"
    worker.tick(force=True)
    assert parked(service) == []
    assert count(service, models.messages) == leftovers

    with inbox.engine_of(service).begin() as conn:  # cannot happen without a restart
        inbox.park(conn, sms(sender=sender(99), body="encore"), service.clock.now())
    worker.tick(force=True)
    assert len(parked(service)) == 1, "only the first tick looks: a replay ticks thousands of times"


def test_metrics_show_what_waits_in_the_inbox(
    queued_client: TestClient, queued_service: Service, clock: VirtualClock
) -> None:
    post_signed(queued_client, SMS_PATH, inbound_params(message_sid(1)))
    clock.advance(timedelta(seconds=42))
    text = queued_client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    assert "antirelou_inbox_waiting 1.0" in text
    assert "antirelou_inbox_oldest_age_seconds 42.0" in text
    assert "antirelou_inbox_stuck 0.0" in text


def test_a_text_decided_but_still_parked_after_a_crash_is_not_answered_twice(
    sqlite_queued: Service,
) -> None:
    service = sqlite_queued
    parked_in = inbox.engine_of(service)
    assert parked_in is not service.engine
    with parked_in.begin() as conn:
        inbox.park(conn, sms(sender=sender(1)), service.clock.now())

    def crash(_conn: Any) -> None:
        raise OSError("killed between the decision's commit and the inbox's")

    event.listen(parked_in, "commit", crash)
    with pytest.raises(OSError, match="killed"):
        inbox.decide_parked(service, 10)
    event.remove(parked_in, "commit", crash)
    assert len(parked(service)) == 1
    assert len(replies(service)) == 1

    again = inbox.decide_parked(service, 10)

    assert (again.texts, again.replies) == (1, 0), "found already stored: nothing more done"
    assert parked(service) == []
    assert len(replies(service)) == 1


def test_on_sqlite_parked_texts_live_in_their_own_file(sqlite_queued: Service) -> None:
    side = inbox.side_file(sqlite_queued.engine)
    assert side is not None
    assert side.name == "antirelou.inbox.db"
    with TestClient(create_app(sqlite_queued)) as client:
        post_signed(client, SMS_PATH, inbound_params(message_sid(1)))
    assert side.exists()
    assert len(parked(sqlite_queued)) == 1
    with sqlite_queued.engine.connect() as conn:
        in_main = conn.execute(select(models.inbox.c.id)).all()
    assert in_main == [], "the web process never took the main database's write lock"


def test_texts_parked_in_one_turn_of_the_event_loop_share_one_commit(
    sqlite_queued: Service,
) -> None:
    parked_in = inbox.engine_of(sqlite_queued)
    commits: list[int] = []
    event.listen(parked_in, "commit", lambda _conn: commits.append(1))
    parking = LoopParking(sqlite_queued, parked_in)
    texts = [sms(sender=sender(n), body=text(n)) for n in range(40)]

    async def all_at_once() -> list[Any]:
        return await asyncio.gather(*(parking.park(t) for t in texts), return_exceptions=True)

    assert asyncio.run(all_at_once()) == [None] * 40
    assert len(parked(sqlite_queued)) == 40
    assert len(commits) == 1


def test_no_text_is_acknowledged_when_the_parking_commit_fails(sqlite_queued: Service) -> None:
    parked_in = inbox.engine_of(sqlite_queued)
    parking = LoopParking(sqlite_queued, parked_in)

    def refuse(_conn: Any) -> None:
        raise OSError("disk full")

    async def three() -> list[Any]:
        texts = [sms(sender=sender(n)) for n in range(3)]
        return await asyncio.gather(*(parking.park(t) for t in texts), return_exceptions=True)

    event.listen(parked_in, "commit", refuse)
    outcomes = asyncio.run(three())
    event.remove(parked_in, "commit", refuse)
    assert [type(o) for o in outcomes] == [OSError] * 3, "no 200 for what was not stored"
    assert parked(sqlite_queued) == []
    assert asyncio.run(three()) == [None] * 3, "the next batch goes through"


def test_a_text_carrying_a_nul_is_parked_and_decided_like_any_other(service: Service) -> None:
    text = sms(sender=sender(1), body="Salut\x00toi", provider_id="SM\x00" + "1" * 31)
    with inbox.engine_of(service).begin() as conn:
        inbox.park(conn, text, service.clock.now())
    assert inbox.decide_parked(service, 10).texts == 1
    with service.engine.connect() as conn:
        stored = conn.execute(select(models.messages.c.provider_id, models.messages.c.body)).one()
    assert tuple(stored) == ("SM\ufffd" + "1" * 31, "Salut\ufffdtoi")


def test_a_parked_text_keeps_the_parts_its_provider_billed(service: Service) -> None:
    with inbox.engine_of(service).begin() as conn:
        inbox.park(conn, replace(sms(sender=sender(1)), parts=3), service.clock.now())
        inbox.park(conn, sms(sender=sender(2)), service.clock.now())  # counted from the body
    assert inbox.decide_parked(service, 10).texts == 2
    price = round(service.settings.pricing.inbound * 1_000_000)
    assert inbound_billed(service) == [3 * price, price]


def test_decisions_go_on_while_the_provider_keeps_a_reply_waiting(
    database_url: str, clock: VirtualClock
) -> None:
    """The running worker decides parked texts on a thread of its own: a provider call
    that does not come back must not hold up the decisions, and raid detection with them."""
    settings = make_settings(database_url, web={"intake": "queued"}, worker={"poll_interval": 0.05})
    service = Service(settings, make_engine(database_url), clock)
    service.sync_lines()
    release = threading.Event()
    calling = threading.Event()

    class Stuck(SandboxSender):
        def send(self, message: OutgoingSms) -> SendResult:
            calling.set()
            release.wait(30)
            return super().send(message)

    worker = Worker(service, {"sandbox": Stuck()}, deliver_alerts=False)
    stop = threading.Event()
    running = threading.Thread(target=worker.run_forever, args=(stop,))
    try:
        with inbox.engine_of(service).begin() as conn:
            inbox.park(conn, sms(sender=sender(0), body=text(0)), clock.now())
        running.start()
        assert calling.wait(10), "the first reply never reached the provider"
        with inbox.engine_of(service).begin() as conn:
            for n in range(1, 6):
                inbox.park(conn, sms(sender=sender(n), body=text(n)), clock.now())
        deadline = time.monotonic() + 10
        while parked(service) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert parked(service) == [], "decisions waited behind a provider call"
        assert count(service, models.messages) == 6
    finally:
        release.set()
        stop.set()
        worker.wake.set()
        running.join(30)
        worker.close()
        service.dispose()


def _side_file(service: Service) -> Path:
    side = inbox.side_file(service.engine)
    assert side is not None
    return side


def _side_version(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_a_side_file_from_before_the_version_stamp_keeps_its_texts_and_is_stamped(
    sqlite_queued: Service, clock: VirtualClock
) -> None:
    service = sqlite_queued
    side = _side_file(service)
    older = make_engine(f"sqlite:///{side}")  # as the versions before the stamp made it
    models.inbox.create(older)
    with older.begin() as conn:
        inbox.park(conn, sms(), clock.now())
    older.dispose()
    assert _side_version(side) == 0
    inbox.check(service)
    assert len(parked(service)) == 1
    assert _side_version(side) == inbox.SIDE_FILE_VERSION


def test_a_side_file_in_a_newer_layout_stops_commands_at_start_and_is_left_alone(
    sqlite_queued: Service, tmp_path: Path
) -> None:
    service = sqlite_queued
    side = _side_file(service)
    with contextlib.closing(sqlite3.connect(side)) as conn:
        conn.execute("CREATE TABLE inbox_v2 (anything TEXT)")
        conn.execute(f"PRAGMA user_version = {inbox.SIDE_FILE_VERSION + 1}")
        conn.commit()
    with pytest.raises(inbox.InboxVersionError, match="newer layout"):
        inbox.engine_of(service)
    config = tmp_path / "antirelou.toml"
    url = service.settings.database_url
    config.write_text(f'database_url = "{url}"\n[web]\nintake = "queued"\n')
    # Every command that opens the service (serve and worker among them) stops the same way.
    result = CliRunner().invoke(main, ["money", "status", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "newer layout" in result.output
    assert _side_version(side) == inbox.SIDE_FILE_VERSION + 1
    with contextlib.closing(sqlite3.connect(side)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"inbox_v2"}, "nothing created in a file this version cannot read"
