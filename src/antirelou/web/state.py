"""What the web app holds: the service, its intake of texts and a way to wake the
in-process worker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from antirelou.inbound import Receipt
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
        """A verified text from a provider: stored and decided, committed with its
        neighbours (web/intake.py); wakes the worker when it queued a reply."""
        receipt = await self.intake.receive(sms)
        if receipt.reply_id is not None:
            self.notify_reply()
        return receipt

    def notify_reply(self) -> None:
        """A reply was queued: let a local worker pick it up now instead of at its next poll."""
        for callback in self.on_reply:
            callback()
