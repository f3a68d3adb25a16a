"""The sandbox provider: no account, nothing leaves the machine.

Replies are "sent" by being recorded (they stay visible in the outbox and the dashboard)
and cost what `pricing` says, so a replay or a trial run counts money like the real thing.
"""

from __future__ import annotations

from datetime import datetime

from antirelou.providers.base import OutgoingSms, SendResult


class SandboxSender:
    name = "sandbox"

    def __init__(self) -> None:
        self.sent: list[OutgoingSms] = []

    def send(self, sms: OutgoingSms) -> SendResult:
        self.sent.append(sms)
        return SendResult(provider_message_id=f"SB{sms.reference:032d}")

    def find_sent(self, sms: OutgoingSms, since: datetime) -> SendResult | None:
        # Sandbox sends never fail half-way: a reply we recorded was sent.
        return None

    def close(self) -> None:
        return None
