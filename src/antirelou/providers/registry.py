"""Builds the sending adapters a configuration needs. Only entry points import this."""

from __future__ import annotations

from antirelou.providers.base import Sender
from antirelou.providers.sandbox import SandboxSender
from antirelou.providers.twilio import TwilioSender
from antirelou.settings import Settings


def build_senders(settings: Settings) -> dict[str, Sender]:
    """One adapter per provider used by at least one line."""
    used = {line.provider for line in settings.lines}
    senders: dict[str, Sender] = {}
    if "sandbox" in used:
        senders["sandbox"] = SandboxSender()
    if "twilio" in used:
        twilio = settings.twilio
        senders["twilio"] = TwilioSender(
            twilio.account_sid,
            twilio.auth_token.get_secret_value(),
            api_base_url=twilio.api_base_url,
            timeout=twilio.timeout,
        )
    return senders
