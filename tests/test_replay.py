"""`antirelou replay` skips only the worker's no-op rounds and ticks: same outcomes, faster;
and its speed-ups (one held connection, a frozen heap) change nothing else either."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select

from antirelou import dbutil, models, operations, replay
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.inbound import Receipt, receive
from antirelou.providers.sandbox import SandboxSender
from antirelou.replay import DRAIN_STEP, Replay, ScenarioText, run_replay
from antirelou.service import Service
from antirelou.worker import Worker
from tests.conftest import START
from tests.helpers import LINE, make_settings, raid_window, sms


class SteppedReplay(Replay):
    """The replay as it was before it skipped anything: a tick and a round every time the
    worker looks, and the drain stepping through every DRAIN_STEP."""

    def _steps_to_work(self, end: datetime) -> int:
        return 1

    def _work(self, force: bool = False) -> None:
        now = self.clock.now()
        if not force and now - self._worked_at < replay.WORKER_STEP:
            return
        self._worked_at = now
        self.worker.tick()
        self.worker.drain()


def _outcomes(out: Path) -> dict[str, Any]:
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    summary.pop("elapsed_s")
    return {
        "summary": summary,
        "inbound": (out / "inbound.jsonl").read_text(encoding="utf-8"),
        "outbound": (out / "outbound.jsonl").read_text(encoding="utf-8"),
    }


@pytest.mark.parametrize(
    ("mode", "reply_delay"),
    [("antirelou", "0s"), ("every_text", "90m")],
    ids=["held-and-released", "delayed-replies"],
)
def test_skipping_idle_work_changes_no_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, reply_delay: str
) -> None:
    texts = raid_window(tmp_path, timedelta(minutes=30), timedelta(minutes=20))
    settings = make_settings(
        "sqlite:///unused.db",
        lines=[{"number": LINE, "provider": "sandbox", "reply_delay": reply_delay}],
        defence={"mode": mode},
        budget={"daily_cap": 30, "total": 100_000},
        evidence={"key_path": str(tmp_path / "evidence.key")},
    )
    drain = timedelta(hours=3)
    run_replay(texts, settings, tmp_path / "skipping", drain, progress=False)
    monkeypatch.setattr(replay, "Replay", SteppedReplay)
    run_replay(texts, settings, tmp_path / "stepped", drain, progress=False)
    skipping, stepped = _outcomes(tmp_path / "skipping"), _outcomes(tmp_path / "stepped")
    assert skipping == stepped
    assert skipping["summary"]["replies"] > 0
    if mode == "antirelou":
        assert skipping["summary"]["incidents"], "the raid opened an incident"
        assert _last_sent(skipping["outbound"]) > _last_at(texts), "released while draining"


def _last_at(texts: Path) -> datetime:
    lines = texts.read_text(encoding="utf-8").splitlines()
    return max(datetime.fromisoformat(json.loads(line)["at"]) for line in lines)


def _last_sent(outbound: str) -> datetime:
    return max(
        datetime.fromisoformat(json.loads(line)["sent_at"]) for line in outbound.splitlines()
    )


# --- what the replay asks the worker ---------------------------------------------------------


@pytest.fixture
def sandbox(database_url: str, clock: VirtualClock) -> Iterator[Service]:
    lines = [{"number": LINE, "provider": "sandbox", "reply_delay": "2m"}]
    service = Service(make_settings(database_url, lines=lines), make_engine(database_url), clock)
    service.sync_lines()
    yield service
    service.dispose()


def test_next_due_is_when_a_round_finds_a_reply(sandbox: Service, clock: VirtualClock) -> None:
    worker = Worker(sandbox, {"sandbox": SandboxSender()}, deliver_alerts=False)
    assert worker.next_due() is None
    receive(sandbox, sms(body="Salut"))
    due = worker.next_due()
    assert due == clock.now() + timedelta(minutes=2)
    assert worker.drain() == 0
    clock.set(due)
    assert worker.drain() == 1
    assert worker.next_due() is None


def test_idle_when_nothing_is_held_no_incident_open_and_evidence_checkpointed(
    sandbox: Service, clock: VirtualClock
) -> None:
    worker = Worker(sandbox, {"sandbox": SandboxSender()}, deliver_alerts=False)
    assert worker.tick() is True
    assert worker.idle()
    incident = operations.open_incident(sandbox, LINE, "alice")
    assert not worker.idle(), "an open incident may close at any tick"
    receive(sandbox, sms(body="Salut"))
    operations.close_incident(sandbox, incident, "alice")
    assert not worker.idle(), "a held reply waits for a tick to release it"
    assert worker.tick() is False, "at most one tick every TICK"
    clock.advance(DRAIN_STEP)
    assert worker.tick() is True
    assert worker.idle(), "released, and the incident's evidence checkpointed"
    assert worker.next_due() == clock.now()
    assert worker.drain() == 1
    assert not worker.idle(), "the reply's evidence waits for the next periodic checkpoint"
    clock.advance(timedelta(minutes=5))
    worker.tick()
    assert worker.idle()


def test_drain_needs_no_empty_round_after_a_short_batch(
    database_url: str, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(database_url, worker={"batch": 2, "backoff": "1s", "lease": "30s"})
    service = Service(settings, make_engine(database_url), clock)
    service.sync_lines()
    worker = Worker(service, {"sandbox": SandboxSender()}, deliver_alerts=False)
    rounds: list[int] = []
    run_once = worker.run_once

    def counted() -> int:
        rounds.append(run_once())
        return rounds[-1]

    monkeypatch.setattr(worker, "run_once", counted)
    for i in range(3):
        receive(service, sms(sender=f"+336{i + 1}2345678", body="Salut"))
    assert worker.drain() == 3
    assert rounds == [2, 1], "a full batch may leave more due; a short one took them all"
    service.dispose()


# --- the replay's speed-ups -----------------------------------------------------------------


def test_a_replay_transaction_commits_or_rolls_back_as_engine_begin_does(tmp_path: Path) -> None:
    replay = Replay(make_settings("sqlite:///unused.db"), tmp_path, START)
    engine = replay.service.engine
    senders = models.senders
    row = {"line": LINE, "number": "+33612345678", "first_seen": START, "last_seen": START}

    def fail_midway() -> None:
        with engine.begin() as conn:
            conn.execute(insert(senders).values(**row, message_count=1))
            raise RuntimeError("a failure in the middle of a transaction")

    with pytest.raises(RuntimeError):
        fail_midway()
    with engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(senders)).scalar() == 0
        conn.execute(insert(senders).values(**row, message_count=2))
    replay.close()
    saved = make_engine(f"sqlite:///{tmp_path / 'replay.db'}")
    with saved.connect() as conn:
        assert conn.execute(select(senders.c.message_count)).scalars().all() == [2]
    saved.dispose()


def test_the_heap_is_frozen_while_a_replay_runs_and_given_back_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = raid_window(tmp_path, timedelta(minutes=1), timedelta(minutes=1))
    frozen: list[int] = []
    feed = Replay.feed

    def counted(self: Replay, text: ScenarioText) -> Receipt:
        frozen.append(gc.get_freeze_count())
        return feed(self, text)

    monkeypatch.setattr(Replay, "feed", counted)
    settings = make_settings("sqlite:///unused.db")
    run_replay(texts, settings, tmp_path / "out", timedelta(minutes=1), progress=False)
    assert frozen
    assert min(frozen) > 0
    assert gc.get_freeze_count() == 0


def test_the_workers_reads_take_the_held_connection_not_the_pool(tmp_path: Path) -> None:
    replay = Replay(make_settings("sqlite:///unused.db"), tmp_path, START)
    engine = replay.service.engine
    checkouts: list[object] = []
    event.listen(engine, "checkout", lambda *args: checkouts.append(args))
    replay.feed(ScenarioText("SM1", START, "+33612345678", LINE, "Bonjour"))
    assert replay.worker.next_due() is None  # its reply went out: read on the held one
    assert checkouts == []
    replay.close()
    # Once the replay lets its connection go, the engine's reads take the pool's again.
    assert dbutil._LENT == {}
