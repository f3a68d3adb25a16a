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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

from antirelou.findings import Finding, Level
from antirelou.providers.base import Balance, NoBalance
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


@dataclass
class Preflight:
    """What one provider said: its findings, and its balance when it gives one."""

    provider: str
    findings: list[Finding] = field(default_factory=list)
    balance: Balance | None = None


def _hook(where: str, what: str, found: str, method: str | None, expected: str) -> Finding:
    """Whether a console's webhook field holds exactly `expected` (and POST, when said)."""
    if not found:
        return Finding(Level.FAIL, f"{where}: {what} is empty: set it to {expected} (POST)")
    if found != expected:
        return Finding(Level.FAIL, f"{where}: {what} is {found}, not {expected}")
    if method is not None and method.upper() != "POST":
        return Finding(Level.FAIL, f"{where}: {what} is called with {method}: choose POST")
    return Finding(Level.OK, f"{where}: {what} is {expected}")


class _Account:
    """One provider's account: how to reach it, what its first (balance) request is, and
    what it says about each line. Subclasses fill in the provider's own API."""

    name: ClassVar[str]
    fix: ClassVar[str]  # what to check when the credentials are refused
    refusals: ClassVar[tuple[int, ...]] = (401, 403)
    has_balance: ClassVar[bool] = True  # whether first() says how much money is there

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base = settings.public_base

    def client(self) -> ProviderClient:
        raise NotImplementedError

    def first(self, client: ProviderClient) -> tuple[Answer, Balance | None]:
        """The first request (the balance, where there is one) and what it says."""
        raise NotImplementedError

    def lines(
        self, client: ProviderClient, first: Answer, lines: Sequence[LineSettings]
    ) -> list[Finding]:
        raise NotImplementedError

    def refusal(self, answer: Answer) -> str | None:
        """Why an answer is no answer (credentials refused, or anything else), or None."""
        if answer.status in self.refusals:
            return f"credentials refused (HTTP {answer.status}): {self.fix}"
        if answer.status != 200:
            return f"answered HTTP {answer.status} to a read-only request"
        return None


def _basic(name: str, base_url: str, user: str, secret: str, timeout: float) -> ProviderClient:
    return ProviderClient(
        name, base_url, secrets=[secret], timeout=timeout, basic_auth=(user, secret)
    )


# --- Twilio ---------------------------------------------------------------------------------


class _Twilio(_Account):
    name = "twilio"
    fix = "check [twilio] account_sid and auth_token"

    def client(self) -> ProviderClient:
        conf = self.settings.twilio
        token = conf.auth_token.get_secret_value()
        return _basic("Twilio", conf.api_base_url, conf.account_sid, token, conf.timeout)

    @property
    def _account(self) -> str:
        return f"/2010-04-01/Accounts/{quote(self.settings.twilio.account_sid, safe='')}"

    def first(self, client: ProviderClient) -> tuple[Answer, Balance | None]:
        answer = client.ask(f"{self._account}/Balance.json")
        return answer, _balance(answer.json(), "balance", "currency")

    def lines(
        self, client: ProviderClient, first: Answer, lines: Sequence[LineSettings]
    ) -> list[Finding]:
        found = []
        for line in lines:
            query = {"PhoneNumber": line.number}
            answer = client.ask(f"{self._account}/IncomingPhoneNumbers.json", query)
            entries = answer.json()
            number = _listed(entries, "incoming_phone_numbers", "phone_number", line.number)
            found += _twilio_number(line.number, number, self.base)
        return found


def _twilio_number(line: str, number: Mapping[str, Any] | None, base: str) -> list[Finding]:
    where = f"line {line}"
    if number is None:
        return [Finding(Level.FAIL, f"{where}: not a number of this Twilio account")]
    found = []
    if app := number.get("sms_application_sid"):
        text = f"{where}: texts go to TwiML application {app}: its SMS URL must be"
        found.append(Finding(Level.WARN, f"{text} {base}{TWILIO_SMS}"))
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


class _Vonage(_Account):
    name = "vonage"
    fix = "check [vonage] api_key and api_secret"

    def client(self) -> ProviderClient:
        conf = self.settings.vonage
        secret = conf.api_secret.get_secret_value()
        return ProviderClient("Vonage", conf.api_base_url, secrets=[secret], timeout=conf.timeout)

    @property
    def _credentials(self) -> dict[str, str]:  # Vonage's account API takes them in the query
        conf = self.settings.vonage
        return {"api_key": conf.api_key, "api_secret": conf.api_secret.get_secret_value()}

    def first(self, client: ProviderClient) -> tuple[Answer, Balance | None]:
        answer = client.ask("/account/get-balance", self._credentials)
        return answer, _balance(answer.json(), "value", None, default_currency="EUR")

    def lines(
        self, client: ProviderClient, first: Answer, lines: Sequence[LineSettings]
    ) -> list[Finding]:
        found = []
        for line in lines:
            # search_pattern 0: numbers that start with the pattern (the whole number here).
            query = {**self._credentials, "pattern": bare(line.number), "search_pattern": "0"}
            answer = client.ask("/account/numbers", query)
            number = _listed(answer.json(), "numbers", "msisdn", bare(line.number))
            found.append(_vonage_number(line.number, number, self.base))
        return found


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


class _Plivo(_Account):
    name = "plivo"
    fix = "check [plivo] auth_id and auth_token"
    refusals = (401, 403, 404)  # Plivo answers 404 to an auth ID it does not know

    def client(self) -> ProviderClient:
        conf = self.settings.plivo
        token = conf.auth_token.get_secret_value()
        return _basic("Plivo", conf.api_base_url, conf.auth_id, token, conf.timeout)

    @property
    def _account(self) -> str:
        return f"/v1/Account/{quote(self.settings.plivo.auth_id, safe='')}"

    def first(self, client: ProviderClient) -> tuple[Answer, Balance | None]:
        answer = client.ask(f"{self._account}/")
        return answer, _balance(answer.json(), "cash_credits", None, default_currency="USD")

    def lines(
        self, client: ProviderClient, first: Answer, lines: Sequence[LineSettings]
    ) -> list[Finding]:
        return [self._number(client, line.number) for line in lines]

    def _number(self, client: ProviderClient, line: str) -> Finding:
        where = f"line {line}"
        answer = client.ask(f"{self._account}/Number/{quote(bare(line), safe='')}/")
        body = answer.json()
        if answer.status != 200 or not isinstance(body, dict):
            return Finding(Level.FAIL, f"{where}: not a number of this Plivo account")
        app = body.get("application")
        if not isinstance(app, str) or not app.startswith("/v1/"):
            text = f"{where}: no application on the number: its texts go nowhere; attach one"
            return Finding(Level.FAIL, f"{text} whose Message URL is {self.base}{PLIVO_SMS} (POST)")
        application = client.ask(app).json()
        if not isinstance(application, dict):
            return Finding(Level.FAIL, f"{where}: its application {app} could not be read")
        url, method = str(application.get("message_url") or ""), application.get("message_method")
        return _hook(where, "the application's Message URL", url, method, self.base + PLIVO_SMS)


# --- SMS Gateway for Android -----------------------------------------------------------------


class _Android(_Account):
    """The phone has no balance to give (a SIM plan's credit is the operator's business):
    its first request lists the webhooks registered on it."""

    name = "android"
    fix = "check [android] username and password"
    has_balance = False

    def client(self) -> ProviderClient:
        conf = self.settings.android
        password = conf.password.get_secret_value()
        return _basic("the Android gateway", conf.api_url, conf.username, password, conf.timeout)

    def first(self, client: ProviderClient) -> tuple[Answer, Balance | None]:
        return client.ask("/webhooks"), None

    def lines(
        self, client: ProviderClient, first: Answer, lines: Sequence[LineSettings]
    ) -> list[Finding]:
        hooks = first.json()
        registered = {
            (str(hook.get("event")), str(hook.get("url")))
            for hook in (hooks if isinstance(hooks, list) else [])
            if isinstance(hook, dict)
        }
        ours = {self.base + ANDROID_SMS, self.base + ANDROID_STATUS}  # either takes any event

        def here(event: str) -> bool:
            return any(e == event and url in ours for e, url in registered)

        sms = f"{self.base}{ANDROID_SMS}"
        if here("sms:received"):
            found = [Finding(Level.OK, f"android: sms:received comes to {sms}")]
        else:
            text = f"android: no sms:received webhook to {sms}: no text reaches us"
            found = [Finding(Level.FAIL, text)]
        if missing := [event for event in ANDROID_STATUS_EVENTS if not here(event)]:
            text = f"android: no webhook to {self.base}{ANDROID_STATUS} for {', '.join(missing)}"
            found.append(Finding(Level.WARN, f"{text}: whether replies arrive stays unknown"))
        return found


# --- shared ---------------------------------------------------------------------------------

_ACCOUNTS: dict[str, type[_Account]] = {
    "twilio": _Twilio,
    "vonage": _Vonage,
    "plivo": _Plivo,
    "android": _Android,
}


def ask(settings: Settings) -> list[Preflight]:
    """Every provider a line uses, asked once for all its lines (the sandbox is not asked)."""
    used = settings.lines_by_provider.items()
    return [
        _preflight(_ACCOUNTS[name](settings), lines) for name, lines in used if name in _ACCOUNTS
    ]


def _preflight(account: _Account, lines: Sequence[LineSettings]) -> Preflight:
    name, client = account.name, account.client()
    try:
        first, balance = account.first(client)
        if refusal := account.refusal(first):
            return Preflight(name, [Finding(Level.FAIL, f"{name}: {refusal}")])
        accepted = Finding(Level.OK, f"{name}: credentials accepted{_said(balance)}")
        return Preflight(name, [accepted, *account.lines(client, first, lines)], balance)
    except Unreachable as exc:
        return Preflight(name, [Finding(Level.FAIL, f"{name}: could not be asked ({exc})")])
    finally:
        client.close()


# The providers whose account has a balance to ask (the phone's SIM plan has none).
WITH_BALANCE = frozenset(name for name, account in _ACCOUNTS.items() if account.has_balance)


def fetch_balance(settings: Settings, provider: str) -> Balance:
    """The money on `provider`'s account now (one read-only request). Raises NoBalance."""
    account = _ACCOUNTS[provider](settings)
    client = account.client()
    try:
        answer, balance = account.first(client)
    except Unreachable as exc:
        raise NoBalance(f"could not be asked ({exc})") from exc
    finally:
        client.close()
    if refusal := account.refusal(answer):
        raise NoBalance(refusal)
    if balance is None:
        raise NoBalance("no balance in its answer")
    return balance


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
