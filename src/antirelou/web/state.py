"""What the web app holds: the service and a way to wake the in-process worker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from antirelou.service import Service


@dataclass
class AppState:
    service: Service
    on_reply: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def of(cls, request: Request) -> AppState:
        state = request.app.state.antirelou
        assert isinstance(state, AppState)
        return state

    def notify_reply(self) -> None:
        """A reply was queued: let a local worker pick it up now instead of at its next poll."""
        for callback in self.on_reply:
            callback()
