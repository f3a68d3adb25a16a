"""Group commit of webhook texts: batched, each all-or-nothing, acknowledged only once stored."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import pytest
from sqlalchemy import event

from antirelou import inbound, models
from antirelou.db import is_sqlite, write_turn
from antirelou.inbound import Receipt
from antirelou.policy import Action
from antirelou.service import Service
from antirelou.web.intake import Intake
from antirelou.worker import Worker
from tests.helpers import count, replies, sms


def fr_mobile(n: int) -> str:
    return f"+336120{n:05d}"


async def _many(intake: Intake, texts: list[Any]) -> list[Receipt | BaseException]:
    return list(await asyncio.gather(*(intake.receive(t) for t in texts), return_exceptions=True))


def test_texts_arriving_together_share_commits_and_each_is_decided_once(service: Service) -> None:
    commits: list[int] = []
    event.listen(service.engine, "commit", lambda _conn: commits.append(1))
    intake = Intake(service)
    texts = [sms(sender=fr_mobile(i), body=f"Salut, moi c'est le numéro {i}") for i in range(40)]
    texts += [texts[0], texts[1]]  # a provider's retries, in the same burst
    receipts = asyncio.run(_many(intake, texts))
    intake.close()
    assert all(isinstance(r, Receipt) for r in receipts)
    assert count(service, models.messages) == 40
    fresh = [r for r in receipts if isinstance(r, Receipt) and not r.duplicate]
    assert len(fresh) == 40
    assert all(r.decision.reasons for r in fresh), "each decided, with its reasons"
    assert len(replies(service)) == sum(r.reply_id is not None for r in fresh)
    assert [r.duplicate for r in receipts if isinstance(r, Receipt)][-2:] == [True, True]
    assert len(commits) < 40, "texts that arrived together were committed together"


def test_a_text_that_fails_is_undone_alone(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = inbound.receive_in

    def flaky(svc: Service, conn: Any, text: Any) -> Receipt:
        receipt = real(svc, conn, text)  # written, then the failure: the savepoint undoes it
        if text.body == "boom":
            raise RuntimeError("a bug while deciding")
        return receipt

    monkeypatch.setattr("antirelou.web.intake.receive_in", flaky)
    intake = Intake(service)
    texts = [sms(sender=fr_mobile(1), body="Coucou"), sms(sender=fr_mobile(2), body="boom")]
    texts.append(sms(sender=fr_mobile(3), body="Tu rentres bien ?"))
    first, failed, third = asyncio.run(_many(intake, texts))
    intake.close()
    assert isinstance(failed, RuntimeError)
    assert isinstance(first, Receipt)
    assert isinstance(third, Receipt)
    assert first.decision.action is Action.REPLY
    assert count(service, models.messages) == 2, "the failed text left nothing behind"
    assert {r.recipient for r in replies(service)} == {fr_mobile(1), fr_mobile(3)}


def test_nothing_is_acknowledged_when_the_commit_fails(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(_conn: Any) -> None:
        raise OSError("disk full")

    intake = Intake(service)
    event.listen(service.engine, "commit", refuse)
    outcomes = asyncio.run(_many(intake, [sms(sender=fr_mobile(i)) for i in range(5)]))
    event.remove(service.engine, "commit", refuse)
    assert all(isinstance(o, OSError) for o in outcomes), "no 2xx for what was not stored"
    assert count(service, models.messages) == 0
    assert isinstance(asyncio.run(intake.receive(sms(sender=fr_mobile(9)))), Receipt)
    intake.close()
    assert count(service, models.messages) == 1, "the intake goes on after a failed commit"


def test_the_intake_and_the_worker_take_turns_to_write(service: Service) -> None:
    """On SQLite the intake waits for the process's write turn (db.write_turn), which the
    worker's threads take too, instead of meeting them in SQLite's busy handler."""
    turn = write_turn(service.engine)
    if not is_sqlite(service.engine):
        assert isinstance(turn, contextlib.nullcontext)  # PostgreSQL locks rows
        return
    assert turn is Worker(service, {})._write_turn  # one turn per database and process
    intake = Intake(service)

    async def while_held() -> Receipt:
        with turn:
            pending = asyncio.ensure_future(intake.receive(sms(sender=fr_mobile(1))))
            await asyncio.sleep(0.3)
            assert not pending.done(), "the intake wrote while another thread had the turn"
        return await pending

    receipt = asyncio.run(while_held())
    intake.close()
    assert not receipt.duplicate
    assert count(service, models.messages) == 1


def test_postgres_decides_at_most_its_deciders_at_once(
    database_url: str, clock: Any, request: pytest.FixtureRequest
) -> None:
    """`[web] postgres_deciders`: texts arriving together on PostgreSQL queue for a turn
    instead of each holding a transaction on its own thread."""
    if database_url.startswith("sqlite"):
        pytest.skip("on SQLite the intake batches texts (the test above)")
    from antirelou.db import make_engine
    from antirelou.web.state import AppState
    from tests.helpers import make_settings

    settings = make_settings(database_url)
    settings = settings.model_copy(
        update={"web": settings.web.model_copy(update={"postgres_deciders": 2})}
    )
    service = Service(settings, make_engine(database_url), clock)
    request.addfinalizer(service.dispose)
    service.sync_lines()
    open_now, most, lock = [0], [0], threading.Lock()

    def began(_conn: Any) -> None:
        with lock:
            open_now[0] += 1
            most[0] = max(most[0], open_now[0])
        time.sleep(0.05)  # long enough for every other text to be waiting by then

    def ended(_conn: Any) -> None:
        with lock:
            open_now[0] -= 1

    event.listen(service.engine, "begin", began)
    event.listen(service.engine, "commit", ended)
    event.listen(service.engine, "rollback", ended)
    state = AppState(service)
    texts = [sms(sender=fr_mobile(i), provider_id=f"SM{i:032d}") for i in range(12)]

    async def all_at_once() -> None:
        await asyncio.gather(*(state.receive(t) for t in texts))

    asyncio.run(all_at_once())
    assert count(service, models.messages) == 12
    assert most[0] == 2
