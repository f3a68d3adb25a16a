"""One typed settings object, read from a TOML file and ANTIRELOU_* environment variables.

Nothing else in the code reads os.environ. A configuration that is invalid or insecure is
refused at load time with every problem listed, so the service never starts half-configured.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from collections.abc import Set as AbstractSet
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from antirelou.durations import parse_duration
from antirelou.evidence.settings import EvidenceSettings

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
ProviderName = Literal["twilio", "vonage", "plivo", "android", "sandbox"]
VonageSignatureMethod = Literal["md5hash", "md5", "sha1", "sha256", "sha512"]

DEFAULT_REPLY_FR = (
    "Bonjour. Ce numéro n'est pas le sien : elle vous l'a donné pour vous dire non. "
    "Quand une femme dit non, c'est non. Merci de ne pas insister."
)
DEFAULT_VOICE_FR = (
    "Bonjour. Ce numéro n'est pas le sien. Elle vous l'a donné pour vous dire non. "
    "Quand une femme dit non, c'est non. Merci de ne pas insister. Au revoir."
)
PLACEHOLDERS = {"", "...", "AC...", "changeme", "change-me", "secret"}


class ConfigError(Exception):
    """The configuration cannot be used. `problems` lists every reason, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LineSettings(Strict):
    number: str
    provider: ProviderName = "sandbox"
    language: str = "fr"
    reply: str = DEFAULT_REPLY_FR
    reply_delay: Duration = timedelta(0)
    reply_window: Duration = timedelta(days=30)
    allowed_countries: tuple[str, ...] = ("FR",)
    timezone: str = "Europe/Paris"
    # Voice calls (Twilio): a short spoken message, then hang up.
    voice_message: str = DEFAULT_VOICE_FR
    voice: str = "Polly.Lea"  # a Twilio <Say> voice for the line's language
    voice_audio_url: str = ""  # a recorded message to <Play> instead of <Say>
    voice_max_plays: int = Field(2, ge=0)  # then the caller's calls are rejected (not billed)

    @field_validator("number")
    @classmethod
    def _e164(cls, value: str) -> str:
        try:
            parsed = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException as exc:
            raise ValueError(f"{value!r} is not an international number (+33...)") from exc
        if not phonenumbers.is_valid_number(parsed):
            raise ValueError(f"{value!r} is not a valid phone number")
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)

    @field_validator("reply")
    @classmethod
    def _reply(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the reply cannot be empty")
        return value.strip()

    @field_validator("allowed_countries")
    @classmethod
    def _countries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        regions = phonenumbers.SUPPORTED_REGIONS
        unknown = [c for c in value if c.upper() not in regions]
        if unknown:
            raise ValueError(f"unknown country codes {unknown} (use ISO codes such as FR, BE)")
        if not value:
            raise ValueError("at least one country is needed, or no reply can ever be sent")
        return tuple(c.upper() for c in value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _window(self) -> LineSettings:
        if self.reply_window <= timedelta(0):
            raise ValueError("reply_window must be positive")
        if self.reply_delay < timedelta(0):
            raise ValueError("reply_delay cannot be negative")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class PricingSettings(Strict):
    inbound: float = Field(0.0075, ge=0)
    outbound_segment: float = Field(0.07627, ge=0)
    voice_minute: float = Field(0.01, ge=0)  # receiving a call, per started minute
    currency: str = "EUR"


class BudgetSettings(Strict):
    daily_cap: float = Field(20.0, ge=0)
    total: float = Field(3700.0, ge=0)
    # How often the worker asks each provider how much money is on its account (0: never),
    # and under what balance, in the provider's currency, an alert goes out (None: the
    # daily cap, when the provider bills in [pricing] currency).
    provider_balance_every: Duration = timedelta(minutes=15)
    provider_balance_floor: float | None = Field(None, ge=0)
    # The part of the daily cap answered calls may take: a flood of calls must not leave
    # nothing for the replies to texts.
    voice_share: float = Field(0.25, ge=0, le=1)


class TwilioSettings(Strict):
    account_sid: str = ""
    auth_token: SecretStr = SecretStr("")
    api_base_url: str = "https://api.twilio.com"
    timeout: float = Field(10.0, gt=0)


class VonageSettings(Strict):
    """Vonage SMS API. Webhooks must be signed: `signature_secret` and `signature_method` are
    the ones chosen in the Vonage dashboard (API settings, "Signed webhooks")."""

    api_key: str = ""
    api_secret: SecretStr = SecretStr("")
    signature_secret: SecretStr = SecretStr("")
    signature_method: VonageSignatureMethod = "sha256"
    # Vonage re-sends a webhook for 24 h with the timestamp of its first attempt: a shorter
    # window loses the texts of any outage longer than it (duplicates are caught anyway).
    max_age: Duration = timedelta(hours=24)
    api_base_url: str = "https://rest.nexmo.com"
    timeout: float = Field(10.0, gt=0)
    price_currency: str = "EUR"  # the currency of the Vonage account's prices


class PlivoSettings(Strict):
    """Plivo Message API; webhooks are checked with X-Plivo-Signature-V3 (the auth token)."""

    auth_id: str = ""
    auth_token: SecretStr = SecretStr("")
    api_base_url: str = "https://api.plivo.com"
    timeout: float = Field(10.0, gt=0)
    price_currency: str = "USD"  # Plivo bills in US dollars


class AndroidSettings(Strict):
    """SMS Gateway for Android: a phone whose app sends our replies and signs its webhooks."""

    api_url: str = ""  # http://<phone>:8080 (local server) or https://api.sms-gate.app/3rdparty/v1
    username: str = ""
    password: SecretStr = SecretStr("")
    signing_key: SecretStr = SecretStr("")  # Settings > Webhooks > Signing Key in the app
    max_age: Duration = timedelta(minutes=5)  # the app signs each attempt afresh
    timeout: float = Field(15.0, gt=0)
    price_per_segment: float = Field(0.0, ge=0)  # what the SIM plan charges per SMS part
    # What the plan charges to receive one SMS part, instead of [pricing] inbound for the
    # texts the phone forwards: nothing, on almost every plan.
    inbound_price: float = Field(0.0, ge=0)
    allow_http_on_lan: bool = False  # the app's local server speaks plain http on the LAN


class WorkerSettings(Strict):
    enabled: bool = True
    # `serve` runs the worker as a child process (childworker.py) instead of a thread of
    # the web process: the sends get the machine's other core (inline intake on SQLite:
    # about 500 texts/s against 410 with a thread, docs/load.md), and a crash or a leak of
    # one leaves the other up.
    own_process: bool = True
    poll_interval: float = Field(0.5, gt=0)
    lease: Duration = timedelta(seconds=60)
    max_attempts: int = Field(8, ge=1)
    backoff: Duration = timedelta(seconds=2)
    max_backoff: Duration = timedelta(minutes=10)
    batch: int = Field(20, ge=1)
    # Provider calls in flight at once: a real API answers in 100-400 ms, so one at a
    # time caps a worker at a few replies per second whatever the machine.
    parallel_sends: int = Field(8, ge=1, le=64)


DefenceMode = Literal["antirelou", "once_per_sender", "every_text"]


class DefenceSettings(Strict):
    """Raid detection and the reply policy under attack. See docs/raids.md for the why."""

    # "every_text" (what the 2017 service did) and "once_per_sender" exist to measure the
    # defence against them; never run them in production.
    mode: DefenceMode = "antirelou"
    refuse_abusive_first_text: bool = True
    velocity_window: Duration = timedelta(minutes=10)
    velocity_limit: int = Field(5, ge=2)  # more texts than this in the window: a flooder
    cluster_window: Duration = timedelta(minutes=30)
    cluster_min_senders: int = Field(3, ge=2)  # this many senders sending one text: copy-paste
    block_window: Duration = timedelta(hours=1)
    block_min_senders: int = Field(3, ge=2)  # senders from one block of 100 numbers
    baseline_floor_per_minute: float = Field(1.0, gt=0)
    open_hostile_new_senders: int = Field(3, ge=1)  # in the last 2 minutes...
    open_hostile_texts: int = Field(6, ge=1)  # ...with this many hostile texts: a raid
    surge_ratio: float = Field(10.0, gt=1)  # new senders per minute against the baseline
    surge_min_new_per_minute: int = Field(20, ge=1)
    surge_odd_shape_fraction: float = Field(0.3, ge=0, le=1)  # virtual / clustered numbers
    calm_before_close: Duration = timedelta(minutes=20)
    # This many calls to a line within a minute: the operators are alerted (calls do not
    # open an incident by themselves; their money is bounded by [budget] voice_share).
    call_flood_per_minute: int = Field(20, ge=1)
    min_hold: Duration = timedelta(minutes=10)  # watch a held sender this long before release
    incident_release_pace: float = Field(0.1, ge=0)  # share of the daily cap per hour
    release_pace: float = Field(0.5, gt=0)  # after the incident
    hold_expiry: Duration = timedelta(hours=72)


class AlertSettings(Strict):
    """Where operators hear about incidents and spending. Both channels are optional."""

    webhook_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "antirelou@localhost"
    smtp_to: tuple[str, ...] = ()
    spend_thresholds: tuple[float, ...] = (0.5, 0.8, 1.0)
    account_changes: bool = True  # alert on new accounts, passwords, roles, second factors
    tell_account_holder: bool = True  # and mail the changed account's own address too
    new_network_logins: bool = True  # a login from a network not used lately (web/places.py)
    timeout: float = Field(10.0, gt=0)


class WebSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(64 * 1024, ge=1024)  # every request body, not only webhooks
    workers: int = Field(1, ge=1, le=64)  # web processes of `antirelou serve`
    # "inline": a webhook stores and decides its text before answering. "queued": it only
    # parks the text (durably) and the worker decides it: for a separate worker process
    # to take the decisions' CPU off the web process (inbox.py, docs/deployment.md).
    intake: Literal["inline", "queued"] = "inline"
    # PostgreSQL, inline intake: texts one web process decides at once (web/state.py).
    postgres_deciders: int = Field(4, ge=1, le=64)
    # Addresses of the reverse proxies whose X-Forwarded-For / -Proto are believed.
    forwarded_allow_ips: str = "127.0.0.1"
    body_timeout: float = Field(10.0, gt=0)  # seconds to receive a whole request body
    timeout_keep_alive: int = Field(5, ge=1)  # seconds an idle connection is kept
    limit_concurrency: int = Field(0, ge=0)  # per process; over it a 503 (0: no limit)
    # Per client address, in memory, per process: token buckets (0 per minute: no limit).
    public_rate_per_minute: float = Field(300.0, ge=0)  # /why and /counter
    public_burst: int = Field(120, ge=1)
    login_rate_per_minute: float = Field(10.0, ge=0)  # POST /login
    login_burst: int = Field(30, ge=1)
    # Password checks per process, all addresses together, for browsers not trusted for the
    # account (web/credentials.py): each costs ~0.1 s of CPU (0 per minute: no limit).
    login_checks_per_minute: float = Field(60.0, ge=0)
    login_checks_burst: int = Field(30, ge=1)
    # /metrics: with a token, `Authorization: Bearer <token>` from anywhere; without one,
    # only a direct connection from the machine itself (no proxy in between).
    metrics_token: SecretStr = SecretStr("")
    # Roles whose accounts cannot use the dashboard or the API without a second factor
    # (`antirelou users totp enable EMAIL`): an admin sees numbers and exports evidence.
    second_factor_roles: tuple[Literal["viewer", "moderator", "admin"], ...] = ()
    # The key that seals second-factor secrets in the database (web/sealing.py): 32 bytes,
    # mode 0600, created when the first is sealed. Back it up apart from the database.
    totp_key_path: str = "var/totp.key"


def _default_lines() -> tuple[LineSettings, ...]:
    return (LineSettings(number="+33939000021"),)


class Settings(Strict):
    """Everything the service needs to run. See docs/configuration.md."""

    database_url: str = "sqlite:///var/antirelou.db"
    # How long `serve` and `worker` wait, when they start, for a database that does not
    # answer yet (PostgreSQL restarting, or not up yet at boot) before giving up.
    database_wait: Duration = timedelta(seconds=60)
    public_url: str = "http://127.0.0.1:8000"
    lines: tuple[LineSettings, ...] = Field(default_factory=_default_lines)
    pricing: PricingSettings = PricingSettings()
    budget: BudgetSettings = BudgetSettings()
    twilio: TwilioSettings = TwilioSettings()
    vonage: VonageSettings = VonageSettings()
    plivo: PlivoSettings = PlivoSettings()
    android: AndroidSettings = AndroidSettings()
    worker: WorkerSettings = WorkerSettings()
    web: WebSettings = WebSettings()
    defence: DefenceSettings = DefenceSettings()
    alerts: AlertSettings = AlertSettings()
    evidence: EvidenceSettings = EvidenceSettings()

    def line(self, number: str) -> LineSettings | None:
        return next((line for line in self.lines if line.number == number), None)

    @property
    def lines_by_provider(self) -> dict[str, tuple[LineSettings, ...]]:
        """The providers the lines use, in the order lines name them, with their lines."""
        found: dict[str, tuple[LineSettings, ...]] = {}
        for line in self.lines:
            found[line.provider] = (*found.get(line.provider, ()), line)
        return found

    @property
    def public_base(self) -> str:
        return self.public_url.rstrip("/")


def load_settings(
    path: str | Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Read the TOML file (if any) and the environment; raise ConfigError when unusable."""
    env = dict(os.environ if environ is None else environ)
    file_path = path or env.get("ANTIRELOU_CONFIG")
    data = _read_toml(Path(file_path)) if file_path else {}
    return settings_from_mapping(data, env)


def settings_from_mapping(data: dict[str, Any], env: dict[str, str] | None = None) -> Settings:
    """Settings from already-parsed TOML data plus environment overrides; checked."""
    try:
        settings = _build(data, env or {})
    except ValidationError as exc:
        raise ConfigError([_describe(err) for err in exc.errors()]) from None
    problems = insecure_problems(settings)
    if problems:
        raise ConfigError(problems)
    return settings


def _build(data: dict[str, Any], env: dict[str, str]) -> Settings:
    return Settings.model_validate(_merge(data, env_overrides(env)))


ENV_PREFIX = "ANTIRELOU_"


def env_overrides(env: dict[str, str]) -> dict[str, Any]:
    """ANTIRELOU_TWILIO__AUTH_TOKEN=x becomes {"twilio": {"auth_token": "x"}}.

    Values that look like JSON lists or tables (ANTIRELOU_LINES='[...]') are decoded.
    """
    tree: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == "ANTIRELOU_CONFIG":
            continue
        *parents, leaf = name[len(ENV_PREFIX) :].lower().split("__")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _env_value(value)
    return tree


def _env_value(value: str) -> Any:
    if value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError([f"configuration file not found: {path}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path} is not valid TOML: {exc}"]) from None


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "configuration"
    return f"{where}: {error['msg']}"


def insecure_problems(settings: Settings) -> list[str]:
    """What would make this configuration unsafe to run, in plain words."""
    problems = _line_problems(settings)
    scheme = urlsplit(settings.database_url).scheme
    if not scheme.startswith(("sqlite", "postgresql")):
        problems.append("database_url must be sqlite:///... or postgresql+psycopg://...")
    real = any(line.provider != "sandbox" for line in settings.lines)
    if real and not _is_https_or_local(settings.public_url):
        problems.append(
            "public_url must use https (providers sign the URL; plain http leaks it): "
            f"{settings.public_url}"
        )
    used = settings.lines_by_provider.keys()
    if "twilio" in used:
        problems += _twilio_problems(settings.twilio)
    if "vonage" in used:
        problems += _vonage_problems(settings.vonage)
    if "plivo" in used:
        problems += _plivo_problems(settings.plivo)
    if "android" in used:
        problems += _android_problems(settings.android)
    return problems + _lease_problems(settings, used)


def _lease_problems(settings: Settings, used: AbstractSet[str]) -> list[str]:
    """A send must end well within its lease: a worker renews the lease before each send,
    and another worker takes over a reply whose lease ran out, so a send that outlives it
    could go out twice."""
    timeouts = {
        name: getattr(settings, name).timeout
        for name in ("twilio", "vonage", "plivo", "android")
        if name in used
    }
    if not timeouts:
        return []
    name, slowest = max(timeouts.items(), key=lambda item: item[1])
    lease = settings.worker.lease.total_seconds()
    if lease >= 2 * slowest:
        return []
    return [
        f"worker.lease ({lease:g} s) must be at least twice [{name}] timeout ({slowest:g} s): "
        "a send that outlives its lease could be sent again by another worker"
    ]


def _line_problems(settings: Settings) -> list[str]:
    if not settings.lines:
        return ["at least one [[lines]] entry is needed"]
    numbers = [line.number for line in settings.lines]
    duplicated = sorted({n for n in numbers if numbers.count(n) > 1})
    return [f"line {n} is configured twice" for n in duplicated]


def _twilio_problems(twilio: TwilioSettings) -> list[str]:
    problems = []
    if twilio.account_sid in PLACEHOLDERS or not twilio.account_sid.startswith("AC"):
        problems.append("twilio.account_sid must be your Account SID (AC...)")
    if twilio.auth_token.get_secret_value() in PLACEHOLDERS:
        problems.append("twilio.auth_token is missing: without it no webhook can be verified")
    if not _is_https_or_local(twilio.api_base_url):
        problems.append("twilio.api_base_url must use https")
    return problems


def _vonage_problems(vonage: VonageSettings) -> list[str]:
    problems = []
    if vonage.api_key in PLACEHOLDERS:
        problems.append("vonage.api_key is missing")
    if vonage.api_secret.get_secret_value() in PLACEHOLDERS:
        problems.append("vonage.api_secret is missing: no reply could be sent")
    if vonage.signature_secret.get_secret_value() in PLACEHOLDERS:
        problems.append(
            "vonage.signature_secret is missing: unsigned webhooks could be forged by anyone"
        )
    if vonage.max_age <= timedelta(0):
        problems.append("vonage.max_age must be positive")
    if not _is_https_or_local(vonage.api_base_url):
        problems.append("vonage.api_base_url must use https")
    return problems


def _plivo_problems(plivo: PlivoSettings) -> list[str]:
    problems = []
    if plivo.auth_id in PLACEHOLDERS:
        problems.append("plivo.auth_id is missing")
    if plivo.auth_token.get_secret_value() in PLACEHOLDERS:
        problems.append("plivo.auth_token is missing: without it no webhook can be verified")
    if not _is_https_or_local(plivo.api_base_url):
        problems.append("plivo.api_base_url must use https")
    return problems


def _android_problems(android: AndroidSettings) -> list[str]:
    problems = []
    if android.username in PLACEHOLDERS or android.password.get_secret_value() in PLACEHOLDERS:
        problems.append(
            "android.username and android.password (the app's API credentials) are needed"
        )
    if android.signing_key.get_secret_value() in PLACEHOLDERS:
        problems.append("android.signing_key is missing: without it no webhook can be verified")
    if android.max_age <= timedelta(0):
        problems.append("android.max_age must be positive")
    if not _android_url_ok(android):
        problems.append(
            "android.api_url must use https (or plain http to a LAN address with "
            "android.allow_http_on_lan = true)"
        )
    return problems


def _android_url_ok(android: AndroidSettings) -> bool:
    """The app's local server only speaks http: tolerated on a private LAN, on request."""
    if _is_https_or_local(android.api_url):
        return True
    parts = urlsplit(android.api_url)
    return android.allow_http_on_lan and parts.scheme == "http" and _is_private(parts.hostname)


def _is_private(host: str | None) -> bool:
    try:
        return ipaddress.ip_address(host or "").is_private
    except ValueError:
        return False


def _is_https_or_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and _is_loopback(parts.hostname or "")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
