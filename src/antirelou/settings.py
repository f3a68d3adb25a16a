"""One typed settings object, read from a TOML file and ANTIRELOU_* environment variables.

Nothing else in the code reads os.environ. A configuration that is invalid or insecure is
refused at load time with every problem listed, so the service never starts half-configured.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
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

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
ProviderName = Literal["twilio", "sandbox"]

DEFAULT_REPLY_FR = (
    "Bonjour. Ce numéro n'est pas le sien : elle vous l'a donné pour vous dire non. "
    "Quand une femme dit non, c'est non. Merci de ne pas insister."
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
    currency: str = "EUR"


class BudgetSettings(Strict):
    daily_cap: float = Field(20.0, ge=0)
    total: float = Field(3700.0, ge=0)


class TwilioSettings(Strict):
    account_sid: str = ""
    auth_token: SecretStr = SecretStr("")
    api_base_url: str = "https://api.twilio.com"
    timeout: float = Field(10.0, gt=0)


class WorkerSettings(Strict):
    enabled: bool = True
    poll_interval: float = Field(0.5, gt=0)
    lease: Duration = timedelta(seconds=60)
    max_attempts: int = Field(8, ge=1)
    backoff: Duration = timedelta(seconds=2)
    max_backoff: Duration = timedelta(minutes=10)
    batch: int = Field(20, ge=1)


class WebSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(64 * 1024, ge=1024)


def _default_lines() -> tuple[LineSettings, ...]:
    return (LineSettings(number="+33939000021"),)


class Settings(Strict):
    """Everything the service needs to run. See docs/configuration.md."""

    database_url: str = "sqlite:///var/antirelou.db"
    public_url: str = "http://127.0.0.1:8000"
    lines: tuple[LineSettings, ...] = Field(default_factory=_default_lines)
    pricing: PricingSettings = PricingSettings()
    budget: BudgetSettings = BudgetSettings()
    twilio: TwilioSettings = TwilioSettings()
    worker: WorkerSettings = WorkerSettings()
    web: WebSettings = WebSettings()

    def line(self, number: str) -> LineSettings | None:
        return next((line for line in self.lines if line.number == number), None)

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
    if any(line.provider == "twilio" for line in settings.lines):
        problems += _twilio_problems(settings.twilio)
    return problems


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
