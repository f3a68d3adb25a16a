"""Ask each provider, before the number is handed out, what its side of the set-up says.

The mistakes that stay silent until the first text are on the provider's side: credentials
typed wrong, a line number that belongs to another account, the webhook address pasted with a
typo, left on GET, or pointing at last year's server, a phone whose gateway is off. Each is a
read-only request (costs nothing, changes nothing), and each answer becomes a Finding:

- the credentials are accepted, and the money left on the provider's account (which is what
  a raid really drains: the pot in antirelou's books is only what the collective means to
  spend);
- each line is a number of that account, and its texts come to this server's webhook, by
  POST, at exactly the address this server checks signatures against.

Secrets travel as each provider wants them (Basic auth, or Vonage's query parameters) and
are scrubbed from every message built here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from antirelou.findings import Finding, Level
from antirelou.providers.common import ProviderClient, Unreachable, bare
from antirelou.providers.wire import Answer
from antirelou.settings import LineSettings, Settings

# Where each provider must send what (web/*_hooks.py serve them).
TWILIO_SMS = "/webhooks/twilio/sms"
TWILIO_VOICE = "/webhooks/twilio/voice"
VONAGE_INBOUND = "/webhooks/vonage/inbound"
VONAGE_STATUS = "/webhooks/vonage/status"
PLIVO_SMS = "/webhooks/plivo/sms"
ANDROID_SMS = "/webhooks/android/sms"
ANDROID_STATUS = "/webhooks/android/status"
ANDROID_STATUS_EVENTS = ("sms:sent", "sms:delivered", "sms:failed")


@dataclass(frozen=True)
class Balance:
    amount: float
    currency: str


@dataclass
class Preflight:
    """What one provider said: its findings, and its balance when it gives one."""

    provider: str = ""
    findings: list[Finding] = field(default_factory=list)
    balance: Balance | None = None

    def add(self, level: Level, text: str) -> None:
        self.findings.append(Finding(level, text))


def _json(answer: Answer) -> Any:
    try:
        return json.loads(answer.body)
    except ValueError:
        return None


def _refused(
    name: str, answer: Answer, fix: str, credentials: tuple[int, ...] = (401, 403)
) -> Finding | None:
    """A FAIL for an answer that is not 200 (credentials refused, or anything else)."""
    if answer.status in credentials:
        return Finding(Level.FAIL, f"{name}: credentials refused (HTTP {answer.status}): {fix}")
    if answer.status != 200:
        return Finding(Level.FAIL, f"{name}: answered HTTP {answer.status} to a read-only request")
    return None


def _hook(where: str, what: str, found: str, method: str | None, expected: str) -> Finding:
    """Whether a console's webhook field holds exactly `expected` (and POST, when said)."""
    if not found:
        return Finding(Level.FAIL, f"{where}: {what} is empty: set it to {expected} (POST)")
    if found != expected:
        return Finding(Level.FAIL, f"{where}: {what} is {found}, not {expected}")
    if method is not None and method.upper() != "POST":
        return Finding(Level.FAIL, f"{where}: {what} is called with {method}: choose POST")
    return Finding(Level.OK, f"{where}: {what} is {expected}")


# --- Twilio ---------------------------------------------------------------------------------


def twilio(settings: Settings, lines: Sequence[LineSettings]) -> Preflight:
    conf = settings.twilio
    token = conf.auth_token.get_secret_value()
    http = ProviderClient(
        "Twilio",
        conf.api_base_url,
        secrets=[token],
        timeout=conf.timeout,
        basic_auth=(conf.account_sid, token),
    )
    return _asking("twilio", http, lambda client: _twilio(client, settings, lines))


def _twilio(client: ProviderClient, settings: Settings, lines: Sequence[LineSettings]) -> Preflight:
    result = Preflight()
    account = f"/2010-04-01/Accounts/{quote(settings.twilio.account_sid, safe='')}"
    answer = client.ask(f"{account}/Balance.json")
    fix = "check [twilio] account_sid and auth_token"
    if refusal := _refused("twilio", answer, fix):
        result.findings.append(refusal)
        return result
    result.balance = _balance(_json(answer), "balance", "currency")
    result.add(Level.OK, f"twilio: credentials accepted{_said(result.balance)}")
    for line in lines:
        query = {"PhoneNumber": line.number}
        found = client.ask(f"{account}/IncomingPhoneNumbers.json", query)
        number = _listed(_json(found), "incoming_phone_numbers", "phone_number", line.number)
        result.findings += _twilio_number(line.number, number, settings.public_base)
    return result


def _twilio_number(line: str, number: Mapping[str, Any] | None, base: str) -> list[Finding]:
    where = f"line {line}"
    if number is None:
        return [Finding(Level.FAIL, f"{where}: not a number of this Twilio account")]
    found = []
    if app := number.get("sms_application_sid"):
        text = (
            f"{where}: texts go to messaging application {app}: its URL must be {base}{TWILIO_SMS}"
        )
        found.append(Finding(Level.WARN, text))
    else:
        what = "'A message comes in'"
        url, method = str(number.get("sms_url") or ""), number.get("sms_method")
        found.append(_hook(where, what, url, method, base + TWILIO_SMS))
    if not number.get("voice_application_sid"):
        url, method = str(number.get("voice_url") or ""), number.get("voice_method")
        call = _hook(where, "'A call comes in'", url, method, base + TWILIO_VOICE)
        # A call that goes elsewhere costs nothing and loses no text: said, not failed.
        found.append(call if call.level is Level.OK else Finding(Level.WARN, call.text))
    return found


# --- Vonage ---------------------------------------------------------------------------------


def vonage(settings: Settings, lines: Sequence[LineSettings]) -> Preflight:
    conf = settings.vonage
    secret = conf.api_secret.get_secret_value()
    http = ProviderClient("Vonage", conf.api_base_url, secrets=[secret], timeout=conf.timeout)
    credentials = {"api_key": conf.api_key, "api_secret": secret}
    ask = lambda client: _vonage(client, credentials, settings, lines)  # noqa: E731
    return _asking("vonage", http, ask)


def _vonage(
    client: ProviderClient,
    credentials: Mapping[str, str],
    settings: Settings,
    lines: Sequence[LineSettings],
) -> Preflight:
    result = Preflight()
    answer = client.ask("/account/get-balance", credentials)
    if refusal := _refused("vonage", answer, "check [vonage] api_key and api_secret"):
        result.findings.append(refusal)
        return result
    result.balance = _balance(_json(answer), "value", None, default_currency="EUR")
    result.add(Level.OK, f"vonage: credentials accepted{_said(result.balance)}")
    for line in lines:
        # search_pattern 0: numbers that start with the pattern (the whole number here).
        query = {**credentials, "pattern": bare(line.number), "search_pattern": "0"}
        found = client.ask("/account/numbers", query)
        number = _listed(_json(found), "numbers", "msisdn", bare(line.number))
        result.findings.append(_vonage_number(line.number, number, settings.public_base))
    return result


def _vonage_number(line: str, number: Mapping[str, Any] | None, base: str) -> Finding:
    where = f"line {line}"
    if number is None:
        return Finding(Level.FAIL, f"{where}: not a number of this Vonage account")
    url = str(number.get("moHttpUrl") or "")
    if not url:
        return Finding(
            Level.WARN,
            f"{where}: no inbound URL on the number: texts go to the account's default "
            f"(API settings, SMS settings), which must be {base}{VONAGE_INBOUND} (POST)",
        )
    return _hook(where, "the inbound webhook", url, None, base + VONAGE_INBOUND)


# --- Plivo ----------------------------------------------------------------------------------


def plivo(settings: Settings, lines: Sequence[LineSettings]) -> Preflight:
    conf = settings.plivo
    token = conf.auth_token.get_secret_value()
    http = ProviderClient(
        "Plivo",
        conf.api_base_url,
        secrets=[token],
        timeout=conf.timeout,
        basic_auth=(conf.auth_id, token),
    )
    return _asking("plivo", http, lambda client: _plivo(client, settings, lines))


def _plivo(client: ProviderClient, settings: Settings, lines: Sequence[LineSettings]) -> Preflight:
    result = Preflight()
    account = f"/v1/Account/{quote(settings.plivo.auth_id, safe='')}"
    answer = client.ask(f"{account}/")
    fix = "check [plivo] auth_id and auth_token"
    # Plivo answers 404 to an auth ID it does not know.
    if refusal := _refused("plivo", answer, fix, credentials=(401, 403, 404)):
        result.findings.append(refusal)
        return result
    result.balance = _balance(_json(answer), "cash_credits", None, default_currency="USD")
    result.add(Level.OK, f"plivo: credentials accepted{_said(result.balance)}")
    for line in lines:
        result.findings.append(_plivo_number(client, account, line.number, settings.public_base))
    return result


def _plivo_number(client: ProviderClient, account: str, line: str, base: str) -> Finding:
    where = f"line {line}"
    number = client.ask(f"{account}/Number/{quote(bare(line), safe='')}/")
    body = _json(number)
    if number.status != 200 or not isinstance(body, dict):
        return Finding(Level.FAIL, f"{where}: not a number of this Plivo account")
    app = body.get("application")
    if not isinstance(app, str) or not app.startswith("/v1/"):
        text = f"{where}: no application on the number: its texts go nowhere; attach one"
        return Finding(Level.FAIL, f"{text} whose Message URL is {base}{PLIVO_SMS} (POST)")
    application = _json(client.ask(app))
    if not isinstance(application, dict):
        return Finding(Level.FAIL, f"{where}: its application {app} could not be read")
    url, method = str(application.get("message_url") or ""), application.get("message_method")
    return _hook(where, "the application's Message URL", url, method, base + PLIVO_SMS)


# --- SMS Gateway for Android -----------------------------------------------------------------


def android(settings: Settings, lines: Sequence[LineSettings]) -> Preflight:
    conf = settings.android
    password = conf.password.get_secret_value()
    http = ProviderClient(
        "the Android gateway",
        conf.api_url,
        secrets=[password],
        timeout=conf.timeout,
        basic_auth=(conf.username, password),
    )
    return _asking("android", http, lambda client: _android(client, settings))


def _android(client: ProviderClient, settings: Settings) -> Preflight:
    result = Preflight()
    answer = client.ask("/webhooks")
    if refusal := _refused("android", answer, "check [android] username and password"):
        result.findings.append(refusal)
        return result
    result.add(Level.OK, "android: the gateway answers and accepts our credentials")
    hooks = _json(answer)
    registered = {
        (str(hook.get("event")), str(hook.get("url")))
        for hook in (hooks if isinstance(hooks, list) else [])
        if isinstance(hook, dict)
    }
    base = settings.public_base
    ours = {base + ANDROID_SMS, base + ANDROID_STATUS}  # either path takes any event
    if not any(event == "sms:received" and url in ours for event, url in registered):
        text = f"android: no sms:received webhook to {base}{ANDROID_SMS}: no text reaches us"
        result.add(Level.FAIL, text)
    else:
        result.add(Level.OK, f"android: sms:received comes to {base}{ANDROID_SMS}")
    missing = [
        event
        for event in ANDROID_STATUS_EVENTS
        if not any(e == event and url in ours for e, url in registered)
    ]
    if missing:
        text = f"android: no webhook to {base}{ANDROID_STATUS} for {', '.join(missing)}"
        result.add(Level.WARN, f"{text}: whether replies arrive stays unknown")
    return result


# --- shared ---------------------------------------------------------------------------------

_ASK = {"twilio": twilio, "vonage": vonage, "plivo": plivo, "android": android}


def ask(settings: Settings) -> list[Preflight]:
    """Every provider a line uses, asked once for all its lines (the sandbox is not asked)."""
    used: dict[str, list[LineSettings]] = {}
    for line in settings.lines:
        if line.provider in _ASK:
            used.setdefault(line.provider, []).append(line)
    return [_ASK[provider](settings, lines) for provider, lines in used.items()]


def _asking(
    name: str, client: ProviderClient, questions: Callable[[ProviderClient], Preflight]
) -> Preflight:
    try:
        result = questions(client)
    except Unreachable as exc:
        result = Preflight(findings=[Finding(Level.FAIL, f"{name}: could not be asked ({exc})")])
    finally:
        client.close()
    result.provider = name
    return result


def _listed(body: Any, key: str, field_name: str, wanted: str) -> Mapping[str, Any] | None:
    """The entry of list `key` whose `field_name` is `wanted` (providers match loosely)."""
    entries = body.get(key) if isinstance(body, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and str(entry.get(field_name)) == wanted:
            return entry
    return None


def _balance(
    body: Any, amount_key: str, currency_key: str | None, default_currency: str = ""
) -> Balance | None:
    if not isinstance(body, dict):
        return None
    try:
        amount = float(body[amount_key])
    except (KeyError, TypeError, ValueError):
        return None
    currency = str(body.get(currency_key) or "") if currency_key else ""
    return Balance(amount, (currency or default_currency).upper())


def _said(balance: Balance | None) -> str:
    return "" if balance is None else f"; {balance.amount:,.2f} {balance.currency} on the account"
