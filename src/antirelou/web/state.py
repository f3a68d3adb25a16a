"""What the web app holds: the service, its intake of texts and a way to wake the
in-process worker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from antirelou.inbound import Receipt, receive
from antirelou.providers.base import InboundSms
from antirelou.service import Service
from antirelou.web.intake import Intake


@dataclass
class AppState:
    service: Service
    on_reply: list[Callable[[], None]] = field(default_factory=list)
    intake: Intake = field(init=False)

    def __post_init__(self) -> None:
        self.intake = Intake(self.service)

    @classmethod
    def of(cls, request: Request) -> AppState:
        state = request.app.state.antirelou
        assert isinstance(state, AppState)
        return state

    async def receive(self, sms: InboundSms) -> Receipt:
        """A verified text from a provider, stored and decided; wakes the worker when it
        queued a reply.

        On SQLite, texts that arrive together share a commit (web/intake.py): one writer
        anyway, and the flush per commit was most of a webhook's time. On PostgreSQL each
        text keeps its own transaction on the thread pool: commits are cheap there, and a
        batch touching many senders' rows in arrival order could deadlock with another
        process's batch."""
        if self.service.engine.dialect.name == "sqlite":
            receipt = await self.intake.receive(sms)
        else:
            receipt = await run_in_threadpool(receive, self.service, sms)
        if receipt.reply_id is not None:
            self.notify_reply()
        return receipt

    def notify_reply(self) -> None:
        """A reply was queued: let a local worker pick it up now instead of at its next poll."""
        for callback in self.on_reply:
            callback()
