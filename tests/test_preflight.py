"""`antirelou check --providers` (providers/preflight.py): each provider asked, over real
HTTP against the fake APIs, whether its credentials, its numbers and its webhook addresses
are what this server needs; and the money on its account against the pot."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.routing import Route

from antirelou.cli import main
from antirelou.clock import VirtualClock
from antirelou.findings import Finding, Level
from antirelou.providers import preflight
from antirelou.providers.base import Balance
from antirelou.readiness import findings
from antirelou.service import Service
from antirelou.settings import Settings
from tests.dashboard_kit import dashboard_app
from tests.fakes.android_api import FakeAndroid
from tests.fakes.plivo_api import FakePlivo
from tests.fakes.twilio_api import FakeTwilio
from tests.fakes.vonage_api import FakeVonage
from tests.helpers import LINE, make_settings
from tests.live_server import free_port, serving

BASE = "https://decoy.example.org"
BARE = LINE.removeprefix("+")


def texts(found: list[Finding], level: Level) -> list[str]:
    return [f.text for f in found if f.level == level]


def settings_for(provider: str, section: dict[str, Any]) -> Settings:
    lines = [{"number": LINE, "provider": provider}]
    return make_settings("sqlite://", lines=lines, **{provider: section})


# --- Twilio ---------------------------------------------------------------------------------


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        fake.numbers[LINE] = {
            "sms_url": f"{BASE}/webhooks/twilio/sms",
            "voice_url": f"{BASE}/webhooks/twilio/voice",
        }
        yield fake


def twilio_settings(fake: FakeTwilio, token: str | None = None) -> Settings:
    section = {
        "account_sid": fake.account_sid,
        "auth_token": token or fake.auth_token,
        "api_base_url": fake.base_url,
    }
    return settings_for("twilio", section)


def test_a_twilio_number_set_up_right_is_all_ok(twilio: FakeTwilio) -> None:
    (asked,) = preflight.ask(twilio_settings(twilio))
    assert [f.level for f in asked.findings] == [Level.OK] * 3
    assert asked.findings[0].text == "twilio: credentials accepted; 12.34 USD on the account"
    assert asked.balance == Balance(12.34, "USD")
    assert f"line {LINE}: 'A message comes in' is {BASE}/webhooks/twilio/sms" in texts(
        asked.findings, Level.OK
    )
    assert all(call.authorized for call in twilio.calls)
    assert twilio.calls[1].query == {"PhoneNumber": LINE}


def test_a_wrong_twilio_token_fails_and_is_never_quoted(twilio: FakeTwilio) -> None:
    (asked,) = preflight.ask(twilio_settings(twilio, token="not-the-token"))
    (refused,) = asked.findings
    assert refused.level == Level.FAIL
    assert refused.text.startswith("twilio: credentials refused (HTTP 401)")
    assert "not-the-token" not in refused.text
    assert asked.balance is None
    assert len(twilio.calls) == 1  # nothing more asked with credentials known to be wrong


def test_twilio_webhook_mistakes_are_named(twilio: FakeTwilio) -> None:
    twilio.numbers[LINE] = {"sms_url": "https://old.example.net/sms", "voice_url": ""}
    found = preflight.ask(twilio_settings(twilio))[0].findings
    fails = texts(found, Level.FAIL)
    assert fails == [
        f"line {LINE}: 'A message comes in' is https://old.example.net/sms, "
        f"not {BASE}/webhooks/twilio/sms"
    ]
    (voice,) = texts(found, Level.WARN)  # a call elsewhere loses no text: a warning
    assert "'A call comes in' is empty" in voice

    twilio.numbers[LINE] = {"sms_url": f"{BASE}/webhooks/twilio/sms", "sms_method": "GET"}
    fails = texts(preflight.ask(twilio_settings(twilio))[0].findings, Level.FAIL)
    assert fails == [f"line {LINE}: 'A message comes in' is called with GET: choose POST"]


def test_a_line_not_on_the_twilio_account_fails(twilio: FakeTwilio) -> None:
    twilio.numbers.clear()
    twilio.numbers["+33939000099"] = {"sms_url": f"{BASE}/webhooks/twilio/sms"}
    found = preflight.ask(twilio_settings(twilio))[0].findings
    assert texts(found, Level.FAIL) == [f"line {LINE}: not a number of this Twilio account"]


def test_a_provider_that_cannot_be_reached_fails_without_a_traceback() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    section = {
        "account_sid": "AC" + "1" * 32,
        "auth_token": "secret-token",
        "api_base_url": f"http://127.0.0.1:{port}",
    }
    (asked,) = preflight.ask(settings_for("twilio", section))
    (failed,) = asked.findings
    assert failed.level == Level.FAIL
    assert failed.text.startswith("twilio: could not be asked (")


# --- Vonage ---------------------------------------------------------------------------------


@pytest.fixture
def vonage() -> Iterator[FakeVonage]:
    with FakeVonage() as fake:
        fake.numbers[BARE] = {"moHttpUrl": f"{BASE}/webhooks/vonage/inbound"}
        yield fake


def vonage_settings(fake: FakeVonage, secret: str | None = None) -> Settings:
    section = {
        "api_key": fake.api_key,
        "api_secret": secret or fake.api_secret,
        "signature_secret": "sig-secret",
        "api_base_url": fake.base_url,
    }
    return settings_for("vonage", section)


def test_vonage_credentials_balance_and_inbound_url(vonage: FakeVonage) -> None:
    (asked,) = preflight.ask(vonage_settings(vonage))
    assert texts(asked.findings, Level.OK) == [
        "vonage: credentials accepted; 10.28 EUR on the account",
        f"line {LINE}: the inbound webhook is {BASE}/webhooks/vonage/inbound",
    ]
    assert vonage.calls[1].query["pattern"] == BARE

    vonage.numbers[BARE] = {"moHttpUrl": ""}
    (warning,) = texts(preflight.ask(vonage_settings(vonage))[0].findings, Level.WARN)
    assert "the account's default" in warning

    (asked,) = preflight.ask(vonage_settings(vonage, secret="wrong-secret"))
    assert [f.level for f in asked.findings] == [Level.FAIL]
    assert "wrong-secret" not in asked.findings[0].text


# --- Plivo ----------------------------------------------------------------------------------


@pytest.fixture
def plivo() -> Iterator[FakePlivo]:
    with FakePlivo() as fake:
        fake.numbers[BARE] = "1001"
        fake.applications["1001"] = {
            "message_url": f"{BASE}/webhooks/plivo/sms",
            "message_method": "POST",
        }
        yield fake


def plivo_settings(fake: FakePlivo, auth_id: str | None = None) -> Settings:
    section = {
        "auth_id": auth_id or fake.auth_id,
        "auth_token": fake.auth_token,
        "api_base_url": fake.base_url,
    }
    return settings_for("plivo", section)


def test_plivo_follows_the_number_to_its_application(plivo: FakePlivo) -> None:
    (asked,) = preflight.ask(plivo_settings(plivo))
    assert texts(asked.findings, Level.OK) == [
        "plivo: credentials accepted; 23.28 USD on the account",
        f"line {LINE}: the application's Message URL is {BASE}/webhooks/plivo/sms",
    ]
    assert [c.path for c in plivo.calls][-1] == f"/v1/Account/{plivo.auth_id}/Application/1001/"

    plivo.applications["1001"]["message_method"] = "GET"
    (fail,) = texts(preflight.ask(plivo_settings(plivo))[0].findings, Level.FAIL)
    assert fail.endswith("is called with GET: choose POST")

    plivo.numbers[BARE] = None
    (fail,) = texts(preflight.ask(plivo_settings(plivo))[0].findings, Level.FAIL)
    assert "no application on the number" in fail


def test_plivo_refuses_an_unknown_auth_id(plivo: FakePlivo) -> None:
    (asked,) = preflight.ask(plivo_settings(plivo, auth_id="MAUNKNOWN0000000000"))
    assert [f.level for f in asked.findings] == [Level.FAIL]
    assert "credentials refused" in asked.findings[0].text


# --- Android --------------------------------------------------------------------------------


@pytest.fixture
def android() -> Iterator[FakeAndroid]:
    with FakeAndroid() as fake:
        yield fake


def android_settings(fake: FakeAndroid, password: str | None = None) -> Settings:
    section = {
        "api_url": fake.base_url,
        "username": fake.username,
        "password": password or fake.password,
        "signing_key": "signing-key",
    }
    return settings_for("android", section)


def test_the_phone_must_send_received_texts_here(android: FakeAndroid) -> None:
    status_url = f"{BASE}/webhooks/android/status"
    android.webhooks = [
        {"id": "1", "event": "sms:received", "url": "https://old.example.net/hook"},
        {"id": "2", "event": "sms:sent", "url": status_url},
    ]
    found = preflight.ask(android_settings(android))[0].findings
    assert texts(found, Level.FAIL) == [
        f"android: no sms:received webhook to {BASE}/webhooks/android/sms: no text reaches us"
    ]
    (missing,) = texts(found, Level.WARN)
    assert "for sms:delivered, sms:failed" in missing

    android.webhooks = [
        {"id": "1", "event": "sms:received", "url": f"{BASE}/webhooks/android/sms"},
        *({"id": e, "event": e, "url": status_url} for e in preflight.ANDROID_STATUS_EVENTS),
    ]
    found = preflight.ask(android_settings(android))[0].findings
    assert [f.level for f in found] == [Level.OK, Level.OK]

    found = preflight.ask(android_settings(android, password="wrong-pass"))[0].findings
    assert [f.level for f in found] == [Level.FAIL]


# --- in `antirelou check` -------------------------------------------------------------------


@pytest.fixture
def base_answers() -> Iterator[None]:
    """BASE answers /healthz as antirelou does (`check --providers` asks it first), without
    a DNS lookup of a name that exists nowhere."""
    with respx.mock(assert_all_called=False) as mock:
        mock.get(f"{BASE}/healthz").respond(200, text="ok")
        refused = {"detail": "missing or invalid X-Twilio-Signature"}
        mock.post(url__startswith=f"{BASE}/webhooks/").respond(403, json=refused)
        yield


def reach(service: Service, clock: VirtualClock, twilio: FakeTwilio, public: str) -> list[Finding]:
    """What `check --providers` says of `public` as public_url."""
    settings = twilio_settings(twilio).model_copy(update={"public_url": public})
    checked = checked_service(service, clock, settings)
    return [f for f in findings(checked, providers=True) if f.text.startswith("public_url: ")]


def test_check_reaches_the_public_url_as_a_provider_would(
    service: Service, clock: VirtualClock, twilio: FakeTwilio
) -> None:
    """Over real HTTP: the service itself answers /healthz and refuses an unsigned POST to
    its webhook; a closed port, another server (the fake Twilio, 404), a redirect (http to
    https, say) and a proxy that passes /healthz but not POSTs to /webhooks/ are named."""
    with serving(dashboard_app(service), free_port()) as url:
        said = reach(service, clock, twilio, url)
    assert [(f.level, f.text) for f in said] == [
        (Level.OK, f"public_url: {url}/healthz answers (DNS, certificate, proxy)"),
        (
            Level.OK,
            f"public_url: a POST to {url}/webhooks/twilio/sms reaches antirelou "
            "(refused unsigned, as it must be)",
        ),
    ]

    (said,) = reach(service, clock, twilio, f"http://127.0.0.1:{free_port()}")
    assert said.level == Level.WARN
    assert "cannot be reached from this machine (ConnectError" in said.text

    (said,) = reach(service, clock, twilio, twilio.base_url)
    assert said.level == Level.FAIL
    assert "answered HTTP 404, not antirelou's 'ok'" in said.text

    moved = Starlette(routes=[Route("/healthz", lambda _: RedirectResponse("https://x.test/"))])
    with serving(moved, free_port()) as url:  # type: ignore[arg-type]
        (said,) = reach(service, clock, twilio, url)
    assert said.level == Level.FAIL
    assert "redirects to https://x.test/: providers do not follow a redirect" in said.text

    health_only = Starlette(routes=[Route("/healthz", lambda _: PlainTextResponse("ok"))])
    with serving(health_only, free_port()) as url:  # type: ignore[arg-type]
        healthz, webhook = reach(service, clock, twilio, url)
    assert healthz.level == Level.OK
    assert webhook.level == Level.FAIL
    assert f"a POST to {url}/webhooks/twilio/sms answered HTTP 404" in webhook.text


def vonage_service(service: Service, clock: VirtualClock, fake: FakeVonage) -> Service:
    return checked_service(service, clock, vonage_settings(fake))


def checked_service(service: Service, clock: VirtualClock, settings: Settings) -> Service:
    settings = settings.model_copy(update={"database_url": service.settings.database_url})
    checked = Service(settings, service.engine, clock)
    checked.sync_lines()
    return checked


def test_check_warns_when_the_provider_holds_less_than_the_pot(
    service: Service, clock: VirtualClock, vonage: FakeVonage, base_answers: None
) -> None:
    checked = vonage_service(service, clock, vonage)
    warnings = texts(findings(checked, providers=True), Level.WARN)
    pot = [w for w in warnings if "less than the pot" in w]
    assert pot == [
        "vonage holds 10.28 EUR, less than the pot's 3,700.0000 EUR: replies will stop "
        "at the provider before the caps stop them; top the account up"
    ]
    vonage.balance = 5000.0
    assert not [w for w in texts(findings(checked, providers=True), Level.WARN) if "pot" in w]


def test_check_warns_when_no_floor_applies_to_a_balance_in_another_currency(
    service: Service, clock: VirtualClock, twilio: FakeTwilio, base_answers: None
) -> None:
    """A Twilio account billed in USD and a pot in EUR: the usual case. Without a floor in
    USD no low-balance alert would ever go out, and `check` says so."""
    settings = twilio_settings(twilio)
    warnings = texts(findings(checked_service(service, clock, settings), True), Level.WARN)
    assert (
        "twilio bills in USD, the pot is in EUR: no alert will say its balance runs low; "
        "set [budget] provider_balance_floor (in USD)"
    ) in warnings

    budget = settings.budget.model_copy(update={"provider_balance_floor": 50.0})
    floored = settings.model_copy(update={"budget": budget})
    warnings = texts(findings(checked_service(service, clock, floored), True), Level.WARN)
    assert not [w for w in warnings if "bills in" in w]


def test_check_says_the_providers_were_not_asked_unless_told(
    service: Service, clock: VirtualClock, vonage: FakeVonage
) -> None:
    found = findings(vonage_service(service, clock, vonage))
    assert any(t.startswith("providers: not asked") for t in texts(found, Level.INFO))
    assert vonage.calls == []


def test_check_providers_on_the_command_line_exits_1_on_a_failure(
    tmp_path: Path, service: Service, twilio: FakeTwilio, base_answers: None
) -> None:
    config = tmp_path / "antirelou.toml"
    config.write_text(
        f'database_url = "{service.settings.database_url}"\n'
        f'public_url = "{BASE}"\n'
        f'[[lines]]\nnumber = "{LINE}"\nprovider = "twilio"\n'
        f'[twilio]\naccount_sid = "{twilio.account_sid}"\nauth_token = "{twilio.auth_token}"\n'
        f'api_base_url = "{twilio.base_url}"\n'
        f'[evidence]\nkey_path = "{tmp_path}/evidence.key"\n'
    )
    runner = CliRunner()
    ok = runner.invoke(main, ["check", "--providers", "--config", str(config)])
    assert "ok    twilio: credentials accepted; 12.34 USD on the account" in ok.output
    assert ok.exit_code == 0, ok.output

    twilio.numbers.clear()
    failed = runner.invoke(main, ["check", "--providers", "--config", str(config)])
    assert failed.exit_code == 1
    assert f"FAIL  line {LINE}: not a number of this Twilio account" in failed.output
