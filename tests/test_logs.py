"""Logs: one JSON object per line on request, and never a whole phone number, in either
format; settings' secrets never printed."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from antirelou import logs
from antirelou.cli import main
from antirelou.logs import JsonFormatter, MaskPhoneNumbers, mask_numbers
from tests.helpers import make_settings

NUMBER = "+33612345678"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskPhoneNumbers())
    logger = logging.getLogger("antirelou.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream, handler
    logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("reply 3 to +33612345678 sent", "reply 3 to +336••••••78 sent"),
        ("from +33 6 12 34 56 78.", "from +336••••••78."),
        ("call 06 12 34 56 78", "call 0612••••78"),
        ("call 06.12.34.56.78", "call 0612••••78"),
        ('{"From": "+447700900123"}', '{"From": "+447•••••••23"}'),
        ("digits 33612345678", "digits 3361•••••78"),
    ],
)
def test_phone_numbers_are_masked(text: str, masked: str) -> None:
    assert mask_numbers(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "message SM00000000000000000000000000000001 stored",
        "day:2017-10-27 at 2017-10-27T14:00:00+00:00, 14:00:00,123",
        "retry in 0:00:02, reply 12 of 345, 76270 micros, from 192.168.100.200",
    ],
)
def test_ids_dates_and_small_figures_are_left_alone(text: str) -> None:
    assert mask_numbers(text) == text


def test_json_lines_parse_and_carry_no_whole_number(
    captured: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, stream, handler = captured
    handler.setFormatter(JsonFormatter())
    logger.info("reply %s to %s not sent", 7, NUMBER, extra={"reply_id": 7, "sender": NUMBER})
    try:
        raise ValueError(f"provider said: unknown number {NUMBER}")
    except ValueError:
        logger.exception("round failed for %s", NUMBER)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert set(first) >= {"time", "level", "logger", "message"}
    assert first["level"] == "INFO"
    assert first["logger"] == "antirelou.test_logs"
    assert first["message"] == "reply 7 to +336••••••78 not sent"
    assert (first["reply_id"], first["sender"]) == (7, "+336••••••78")
    assert first["time"].endswith("+00:00")
    assert second["level"] == "ERROR"
    assert "ValueError" in second["exception"]
    assert NUMBER not in stream.getvalue()
    assert "612345678" not in stream.getvalue()


def test_text_lines_are_masked_too(
    captured: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, stream, handler = captured
    handler.setFormatter(logging.Formatter(logs.TEXT_FORMAT))
    logger.warning("text from %s", "0612345678")
    logger.warning("broken format %s %s", NUMBER)  # logging's own error path
    assert "0612345678" not in stream.getvalue()
    assert NUMBER not in stream.getvalue()
    assert "text from 0612••••78" in stream.getvalue()


def test_settings_print_their_secrets_masked(
    captured: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, stream, handler = captured
    handler.setFormatter(JsonFormatter())
    settings = make_settings(
        "sqlite://",
        twilio={"account_sid": "AC" + "0" * 32, "auth_token": "s3cret-auth-token"},
        web={"metrics_token": "s3cret-metrics-token"},
    )
    logger.info("settings: %s", settings)
    logger.info("settings: %r", settings.twilio)
    assert "s3cret" not in stream.getvalue()


def test_the_cli_option_switches_the_format(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[tuple[str, bool]] = []
    monkeypatch.setattr(logs, "configure", lambda fmt, verbose: applied.append((fmt, verbose)))
    runner = CliRunner()
    assert runner.invoke(main, ["--log-format", "json", "-v", "lines", "--help"]).exit_code == 0
    assert applied == [("json", True)]
    assert runner.invoke(main, ["--log-format", "xml", "lines", "--help"]).exit_code == 2


def test_dict_config_sends_uvicorn_through_the_masked_handler() -> None:
    config = logs.dict_config("json")
    assert config["formatters"]["main"] == {"()": "antirelou.logs.JsonFormatter"}
    assert config["handlers"]["stderr"]["filters"] == ["mask"]
    assert config["loggers"]["uvicorn.error"]["propagate"] is True
    assert logs.dict_config("text")["formatters"]["main"] == {"format": logs.TEXT_FORMAT}


def test_http_client_request_lines_are_kept_for_verbose_mode() -> None:
    """httpx logs each provider call at INFO: a line per reply sent, with the provider's
    URL. Quiet by default, there with -v."""
    import logging.config

    clients = [logging.getLogger("httpx"), logging.getLogger("httpcore")]
    levels = [client.level for client in clients]
    try:
        for verbose in (False, True):
            config = logs.dict_config("text", verbose)
            del config["root"]  # leave the test runner's handlers alone
            logging.config.dictConfig(config)
            assert clients[0].isEnabledFor(logging.INFO) is verbose
            assert clients[1].isEnabledFor(logging.DEBUG) is verbose
    finally:
        for client, level in zip(clients, levels, strict=True):
            client.setLevel(level)
