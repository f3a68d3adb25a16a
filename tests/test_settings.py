"""Settings: a TOML file plus ANTIRELOU_* overrides, typed, and refused when unsafe.

Every refusal must be a ConfigError that names the problem, and the Twilio auth token must
never show up in a repr, a str or an error message.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from antirelou.settings import ConfigError, Settings, load_settings

TOKEN = "s3cr3t-auth-token-do-not-leak"
ACCOUNT_SID = "AC" + "1" * 32
REPLY = "Bonjour. Ce numéro n'est pas le sien. Merci de ne pas insister."

EXAMPLE = f"""
database_url = "postgresql+psycopg://antirelou@db.internal/antirelou"
public_url = "https://decoy.example.org/"

[[lines]]
number = "+33 9 39 00 00 21"
provider = "twilio"
language = "fr"
reply = "{REPLY}"
reply_delay = "90s"
reply_window = "30d"
allowed_countries = ["fr", "BE"]
timezone = "Europe/Paris"

[[lines]]
number = "+33939000022"
provider = "sandbox"
reply_delay = "1h30m"
reply_window = "12h"
timezone = "America/Martinique"

[pricing]
inbound = 0.0075
outbound_segment = 0.08
currency = "EUR"

[budget]
daily_cap = 15
total = 1000.5

[twilio]
account_sid = "{ACCOUNT_SID}"
auth_token = "{TOKEN}"
api_base_url = "https://api.twilio.com"
"""

SANDBOX_ONLY = """
database_url = "sqlite:///var/antirelou.db"
public_url = "http://127.0.0.1:8000"

[[lines]]
number = "+33939000021"
"""


def write(tmp_path: Path, text: str, name: str = "antirelou.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    """Load `text` as the configuration file with `env` as the whole environment."""
    return load_settings(write(tmp_path, text), environ=env or {})


def problems_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    """The ConfigError message for a configuration that must be refused."""
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, text, env)
    message = str(refused.value)
    assert TOKEN not in message
    assert all(TOKEN not in problem for problem in refused.value.problems)
    return message


# --- the documented example -------------------------------------------------------------


def test_every_documented_key_parses_into_the_right_type(tmp_path: Path) -> None:
    settings = load(tmp_path, EXAMPLE)

    assert settings.database_url == "postgresql+psycopg://antirelou@db.internal/antirelou"
    assert settings.public_url == "https://decoy.example.org/"
    assert settings.public_base == "https://decoy.example.org"
    first, second = settings.lines
    assert first.number == "+33939000021"  # normalised to E.164
    assert (first.provider, first.language, first.reply) == ("twilio", "fr", REPLY)
    assert first.reply_delay == timedelta(seconds=90)
    assert first.reply_window == timedelta(days=30)
    assert first.allowed_countries == ("FR", "BE")
    assert first.timezone == "Europe/Paris"
    assert str(first.zone) == "Europe/Paris"
    assert (second.number, second.provider) == ("+33939000022", "sandbox")
    assert second.reply_delay == timedelta(hours=1, minutes=30)
    assert second.reply_window == timedelta(hours=12)
    assert second.timezone == "America/Martinique"
    assert settings.pricing.inbound == pytest.approx(0.0075)
    assert settings.pricing.outbound_segment == pytest.approx(0.08)
    assert settings.pricing.currency == "EUR"
    assert isinstance(settings.budget.daily_cap, float)
    assert settings.budget.daily_cap == 15.0
    assert settings.budget.total == pytest.approx(1000.5)
    assert settings.twilio.account_sid == ACCOUNT_SID
    assert settings.twilio.auth_token.get_secret_value() == TOKEN
    assert settings.twilio.api_base_url == "https://api.twilio.com"
    assert settings.line("+33939000022") is second
    assert settings.line("+33939000099") is None


def test_auth_token_is_never_shown(tmp_path: Path) -> None:
    settings = load(tmp_path, EXAMPLE)
    for shown in (repr(settings), str(settings), repr(settings.twilio), str(settings.twilio)):
        assert TOKEN not in shown
    assert TOKEN not in settings.model_dump_json()


# --- the environment --------------------------------------------------------------------


def test_environment_overrides_win_over_the_file(tmp_path: Path) -> None:
    env = {
        "ANTIRELOU_DATABASE_URL": "sqlite:////srv/antirelou/antirelou.db",
        "ANTIRELOU_TWILIO__AUTH_TOKEN": "token-from-the-environment",
        "ANTIRELOU_BUDGET__DAILY_CAP": "5.5",
        "ANTIRELOU_LINES": json.dumps(
            [{"number": "+33939000023", "provider": "twilio", "reply_delay": "2m"}]
        ),
    }
    settings = load(tmp_path, EXAMPLE, env)

    assert settings.database_url == "sqlite:////srv/antirelou/antirelou.db"
    assert settings.twilio.auth_token.get_secret_value() == "token-from-the-environment"
    assert settings.twilio.account_sid == ACCOUNT_SID  # the rest of [twilio] is kept
    assert settings.budget.daily_cap == 5.5
    assert settings.budget.total == pytest.approx(1000.5)
    (line,) = settings.lines
    assert (line.number, line.provider, line.reply_delay) == (
        "+33939000023",
        "twilio",
        timedelta(minutes=2),
    )


def test_antirelou_config_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE, "elsewhere.toml")
    settings = load_settings(environ={"ANTIRELOU_CONFIG": str(path)})
    assert settings.twilio.account_sid == ACCOUNT_SID


def test_antirelou_config_is_read_from_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("ANTIRELOU_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ANTIRELOU_CONFIG", str(write(tmp_path, EXAMPLE)))
    monkeypatch.setenv("ANTIRELOU_BUDGET__TOTAL", "42")
    settings = load_settings()
    assert settings.twilio.account_sid == ACCOUNT_SID
    assert settings.budget.total == 42.0


def test_an_explicit_path_wins_over_antirelou_config(tmp_path: Path) -> None:
    explicit = write(tmp_path, EXAMPLE, "explicit.toml")
    other = write(tmp_path, SANDBOX_ONLY, "other.toml")
    settings = load_settings(explicit, environ={"ANTIRELOU_CONFIG": str(other)})
    assert len(settings.lines) == 2


# --- what is accepted -------------------------------------------------------------------


def test_plain_http_on_loopback_is_fine_for_sandbox_lines(tmp_path: Path) -> None:
    settings = load(tmp_path, SANDBOX_ONLY)
    assert settings.public_url == "http://127.0.0.1:8000"
    assert [line.provider for line in settings.lines] == ["sandbox"]


def test_no_file_gives_the_built_in_defaults() -> None:
    settings = load_settings(environ={})
    assert [line.provider for line in settings.lines] == ["sandbox"]
    assert settings.database_url.startswith("sqlite:///")


# --- what is refused --------------------------------------------------------------------


def replaced(old: str, new: str) -> str:
    assert old in EXAMPLE, old
    return EXAMPLE.replace(old, new, 1)


@pytest.mark.parametrize(
    ("config", "named"),
    [
        pytest.param(
            replaced('"https://decoy.example.org/"', '"http://decoy.example.org/"'),
            "public_url must use https",
            id="http-public-url-with-twilio",
        ),
        pytest.param(
            replaced(f'account_sid = "{ACCOUNT_SID}"', 'account_sid = "AC..."'),
            "twilio.account_sid",
            id="placeholder-sid",
        ),
        pytest.param(
            replaced(f'account_sid = "{ACCOUNT_SID}"', 'account_sid = "XY123"'),
            "twilio.account_sid",
            id="sid-not-starting-with-AC",
        ),
        pytest.param(
            replaced(f'auth_token = "{TOKEN}"', 'auth_token = "changeme"'),
            "twilio.auth_token",
            id="placeholder-token",
        ),
        pytest.param(
            replaced(f'auth_token = "{TOKEN}"\n', ""),
            "twilio.auth_token",
            id="missing-token",
        ),
        pytest.param(
            replaced('api_base_url = "https://api.twilio.com"', 'api_base_url = "http://x.org"'),
            "api_base_url must use https",
            id="http-api-base-url",
        ),
        pytest.param(
            replaced('currency = "EUR"', 'currency = "EUR"\nsurprise = 1'),
            "pricing.surprise",
            id="unknown-key",
        ),
        pytest.param(
            replaced('public_url = "', 'pubic_url = "https://x.org"\npublic_url = "'),
            "pubic_url",
            id="misspelt-top-level-key",
        ),
        pytest.param(
            replaced('reply_delay = "90s"', 'reply_delay = "soon"'),
            "lines.0.reply_delay",
            id="bad-duration",
        ),
        pytest.param(
            replaced('reply_window = "30d"', 'reply_window = "0s"'),
            "reply_window must be positive",
            id="empty-window",
        ),
        pytest.param(
            replaced('"+33 9 39 00 00 21"', '"0939000021"'),
            "lines.0.number",
            id="number-not-international",
        ),
        pytest.param(
            replaced('"+33 9 39 00 00 21"', '"+33 12"'),
            "lines.0.number",
            id="number-not-valid",
        ),
        pytest.param(
            replaced('["fr", "BE"]', '["FR", "XX"]'),
            "unknown country codes ['XX']",
            id="unknown-country",
        ),
        pytest.param(
            replaced('timezone = "Europe/Paris"', 'timezone = "Mars/Olympus_Mons"'),
            "unknown timezone 'Mars/Olympus_Mons'",
            id="unknown-timezone",
        ),
        pytest.param(
            replaced('number = "+33939000022"', 'number = "+33939000021"'),
            "line +33939000021 is configured twice",
            id="duplicate-line",
        ),
        pytest.param(
            replaced('provider = "sandbox"', 'provider = "carrier-pigeon"'),
            "lines.1.provider",
            id="unknown-provider",
        ),
        pytest.param(
            replaced('"postgresql+psycopg://', '"mysql://'),
            "database_url must be",
            id="unsupported-database",
        ),
        pytest.param(
            replaced("daily_cap = 15", "daily_cap = -1"),
            "budget.daily_cap",
            id="negative-cap",
        ),
        pytest.param(
            EXAMPLE + '\n[worker]\nlease = "15s"\n',  # Twilio's timeout is 10 s by default
            "worker.lease (15 s) must be at least twice [twilio] timeout (10 s)",
            id="lease-shorter-than-two-sends",
        ),
    ],
)
def test_invalid_or_insecure_configuration_is_refused_by_name(
    tmp_path: Path, config: str, named: str
) -> None:
    assert named in problems_of(tmp_path, config)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    config = replaced('timezone = "Europe/Paris"', 'timezone = "Nowhere/Land"').replace(
        'reply_delay = "90s"', 'reply_delay = "later"'
    )
    message = problems_of(tmp_path, config)
    assert "unknown timezone" in message
    assert "reply_delay" in message


def test_insecure_override_from_the_environment_is_refused(tmp_path: Path) -> None:
    env = {"ANTIRELOU_PUBLIC_URL": "http://decoy.example.org"}
    assert "public_url must use https" in problems_of(tmp_path, EXAMPLE, env)


def test_unknown_environment_override_is_refused(tmp_path: Path) -> None:
    env = {"ANTIRELOU_TWILIO__AUTH_TOKN": TOKEN}
    assert "twilio.auth_tokn" in problems_of(tmp_path, EXAMPLE, env)


def test_missing_file_is_refused_by_name(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError, match="configuration file not found") as refused:
        load_settings(missing, environ={})
    assert str(missing) in str(refused.value)


def test_invalid_toml_is_refused_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, f'[twilio]\nauth_token = "{TOKEN}"\naccount_sid = \n')
    with pytest.raises(ConfigError, match="is not valid TOML") as refused:
        load_settings(path, environ={})
    assert str(path) in str(refused.value)
    assert TOKEN not in str(refused.value)
