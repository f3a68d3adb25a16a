"""What the web app holds: the service, its intake of texts and a way to wake the
in-process worker."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from antirelou import inbox
from antirelou.inbound import Receipt, receive
from antirelou.providers.base import InboundSms
from antirelou.service import Service
from antirelou.web.forwarding import Unbelieved
from antirelou.web.intake import Intake
from antirelou.web.limits import CheckGate
from antirelou.web.parking import LoopParking


def _park_alone(service: Service, sms: InboundSms) -> None:
    with service.engine.begin() as conn:  # PostgreSQL: the inbox is in the database
        inbox.park(conn, sms, service.clock.now())


@dataclass
class AppState:
    service: Service
    on_reply: list[Callable[[], None]] = field(default_factory=list)
    intake: Intake = field(init=False)
    parking: LoopParking | None = field(init=False, default=None)
    # PostgreSQL, inline intake: how many texts one web process decides at once
    # (`[web] postgres_deciders`). Without a limit each of 32 connections had its own
    # thread and transaction, handing the GIL around and waiting on the same rows (the
    # evidence chain's head, the traffic counters): 103-105 texts/s at most, p99 1.1-1.2 s;
    # with 4, 120-125/s and 0.52-0.53 s (one process, 2 cores, alternating runs,
    # docs/load.md). (A thread's semaphore, not asyncio's: those are bound to one loop.)
    receiving: threading.BoundedSemaphore = field(init=False)
    password_checks: CheckGate = field(init=False)  # web/credentials.py
    unbelieved: Unbelieved = field(default_factory=Unbelieved)  # web/forwarding.py

    def __post_init__(self) -> None:
        self.intake = Intake(self.service)
        web = self.service.settings.web
        self.receiving = threading.BoundedSemaphore(web.postgres_deciders)
        self.password_checks = CheckGate(web.login_checks_per_minute, web.login_checks_burst)

    @classmethod
    def of(cls, request: Request) -> AppState:
        state = request.app.state.antirelou
        assert isinstance(state, AppState)
        return state

    async def receive(self, sms: InboundSms) -> None:
        """A verified text from a provider, made durable before the caller answers 200.

        By default it is stored and decided here. With `[web] intake = "queued"` it is only
        parked in the inbox, and the worker decides it (inbox.py).

        On SQLite, texts that arrive together share a commit (web/intake.py): one writer
        anyway, and the flush per commit was most of a webhook's time. On PostgreSQL each
        text keeps its own transaction on the thread pool: commits are cheap there, and a
        batch touching many senders' rows in arrival order could deadlock with another
        process's batch."""
        sqlite = self.service.engine.dialect.name == "sqlite"
        if self.service.settings.web.intake == "queued":
            if sqlite:
                await self._parking().park(sms)
            else:
                await run_in_threadpool(_park_alone, self.service, sms)
            self.notify_reply()  # a worker in this process decides it now
            return
        if sqlite:
            receipt = await self.intake.receive(sms)
        else:
            receipt = await run_in_threadpool(self._receive_in_turn, sms)
        if receipt.reply_id is not None:
            self.notify_reply()

    def _receive_in_turn(self, sms: InboundSms) -> Receipt:
        with self.receiving:
            return receive(self.service, sms)

    def _parking(self) -> LoopParking:
        """What parks texts in the inbox's own SQLite file (inbox.py, web/parking.py)."""
        if self.parking is None:
            self.parking = LoopParking(self.service, inbox.engine_of(self.service))
        return self.parking

    def notify_reply(self) -> None:
        """A reply was queued (or a text parked): let a local worker pick it up now instead
        of at its next poll."""
        for callback in self.on_reply:
            callback()
