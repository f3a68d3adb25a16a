"""Configuration of the Vonage, Plivo and Android providers: refused when unsafe."""

from __future__ import annotations

from typing import Any

import pytest

from antirelou.providers.android import AndroidSender
from antirelou.providers.plivo import PlivoSender
from antirelou.providers.registry import build_senders
from antirelou.providers.vonage import VonageSender
from antirelou.settings import ConfigError, settings_from_mapping

LINE = "+33939000021"
GOOD: dict[str, dict[str, Any]] = {
    "vonage": {"api_key": "k", "api_secret": "s", "signature_secret": "sig-secret"},
    "plivo": {"auth_id": "MA123", "auth_token": "t"},
    "android": {
        "api_url": "https://api.sms-gate.app/3rdparty/v1",
        "username": "u",
        "password": "p",
        "signing_key": "k",
    },
}


def load(provider: str, **section: Any) -> Any:
    return settings_from_mapping(
        {
            "public_url": "https://decoy.example.org",
            "lines": [{"number": LINE, "provider": provider}],
            provider: {**GOOD[provider], **section},
        }
    )


def problems(provider: str, **section: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(provider, **section)
    return caught.value.problems


@pytest.mark.parametrize("provider", sorted(GOOD))
def test_a_complete_section_loads_and_builds_its_sender(provider: str) -> None:
    settings = load(provider)
    senders = build_senders(settings)
    try:
        assert set(senders) == {provider}
        expected = {"vonage": VonageSender, "plivo": PlivoSender, "android": AndroidSender}
        assert isinstance(senders[provider], expected[provider])
    finally:
        for sender in senders.values():
            sender.close()


@pytest.mark.parametrize(
    ("provider", "section", "mentions"),
    [
        ("vonage", {"signature_secret": ""}, "vonage.signature_secret"),
        ("vonage", {"api_secret": "changeme"}, "vonage.api_secret"),
        ("vonage", {"api_key": ""}, "vonage.api_key"),
        ("vonage", {"api_base_url": "http://rest.nexmo.com"}, "vonage.api_base_url"),
        ("vonage", {"max_age": "0s"}, "vonage.max_age"),
        ("plivo", {"auth_token": ""}, "plivo.auth_token"),
        ("plivo", {"auth_id": "..."}, "plivo.auth_id"),
        ("plivo", {"api_base_url": "http://api.plivo.com"}, "plivo.api_base_url"),
        ("android", {"signing_key": ""}, "android.signing_key"),
        ("android", {"password": ""}, "android.username and android.password"),
        ("android", {"api_url": "http://192.168.1.10:8080"}, "android.api_url"),
        ("android", {"api_url": "http://gateway.example:8080"}, "android.api_url"),
    ],
)
def test_unsafe_sections_are_refused(provider: str, section: dict[str, Any], mentions: str) -> None:
    assert any(mentions in problem for problem in problems(provider, **section))


def test_plain_http_on_the_lan_only_when_asked() -> None:
    settings = load("android", api_url="http://192.168.1.10:8080", allow_http_on_lan=True)
    assert settings.android.api_url == "http://192.168.1.10:8080"
    public = problems("android", api_url="http://93.184.216.34:8080", allow_http_on_lan=True)
    assert any("android.api_url" in problem for problem in public)


def test_unused_sections_are_not_checked() -> None:
    settings = settings_from_mapping({"lines": [{"number": LINE, "provider": "sandbox"}]})
    assert settings.vonage.signature_secret.get_secret_value() == ""


def test_signature_method_must_be_known() -> None:
    with pytest.raises(ConfigError) as caught:
        load("vonage", signature_method="crc32")
    assert any("signature_method" in problem for problem in caught.value.problems)


def test_secrets_are_not_shown() -> None:
    settings = load("vonage", signature_secret="very-secret-value")
    assert "very-secret-value" not in repr(settings)
    assert "very-secret-value" not in str(settings.vonage)


def test_environment_overrides_reach_the_new_sections() -> None:
    settings = settings_from_mapping(
        {"public_url": "https://d.example", "lines": [{"number": LINE, "provider": "plivo"}]},
        {"ANTIRELOU_PLIVO__AUTH_ID": "MA9", "ANTIRELOU_PLIVO__AUTH_TOKEN": "tok"},
    )
    assert settings.plivo.auth_id == "MA9"
    assert settings.plivo.auth_token.get_secret_value() == "tok"
