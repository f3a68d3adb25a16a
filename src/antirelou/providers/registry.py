"""Builds the sending adapters a configuration needs. Only entry points import this."""

from __future__ import annotations

from antirelou.providers.android import AndroidSender
from antirelou.providers.base import Sender
from antirelou.providers.plivo import PlivoSender
from antirelou.providers.sandbox import SandboxSender
from antirelou.providers.twilio import TwilioSender
from antirelou.providers.vonage import VonageSender
from antirelou.settings import Settings


def build_senders(settings: Settings) -> dict[str, Sender]:
    """One adapter per provider used by at least one line."""
    used = settings.lines_by_provider
    senders: dict[str, Sender] = {}
    if "sandbox" in used:
        senders["sandbox"] = SandboxSender()
    if "twilio" in used:
        senders["twilio"] = _twilio(settings)
    if "vonage" in used:
        senders["vonage"] = _vonage(settings)
    if "plivo" in used:
        senders["plivo"] = _plivo(settings)
    if "android" in used:
        senders["android"] = _android(settings)
    return senders


def _twilio(settings: Settings) -> TwilioSender:
    twilio = settings.twilio
    return TwilioSender(
        twilio.account_sid,
        twilio.auth_token.get_secret_value(),
        api_base_url=twilio.api_base_url,
        timeout=twilio.timeout,
    )


def _vonage(settings: Settings) -> VonageSender:
    vonage = settings.vonage
    return VonageSender(
        vonage.api_key,
        vonage.api_secret.get_secret_value(),
        api_base_url=vonage.api_base_url,
        timeout=vonage.timeout,
        currency=vonage.price_currency.upper(),
    )


def _plivo(settings: Settings) -> PlivoSender:
    plivo = settings.plivo
    return PlivoSender(
        plivo.auth_id,
        plivo.auth_token.get_secret_value(),
        api_base_url=plivo.api_base_url,
        timeout=plivo.timeout,
    )


def _android(settings: Settings) -> AndroidSender:
    android = settings.android
    return AndroidSender(
        android.api_url,
        android.username,
        android.password.get_secret_value(),
        timeout=android.timeout,
        price_per_segment=android.price_per_segment,
    )
