"""Logging: text or one JSON object per line, with phone numbers masked in both.

`configure(fmt, verbose)` is called by the CLI's main group. `dict_config()` gives the same
setup as a `logging.config.dictConfig` mapping, handed to uvicorn so that every web process
it starts (`antirelou serve --workers N`) logs the same way.

Masking is a Filter on the handler: whatever a log call formats (a sender's number, a
provider's error message quoting one, an SQL error with its parameters, a traceback), the
line written carries +336••••••78 instead of +33612345678. Secrets are not filtered: the
code never logs settings (they are SecretStr, which prints as '**********').
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
from datetime import UTC, datetime
from typing import Any, Literal

from antirelou.phone import mask

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What looks like a phone number: "+33612345678", "+33 6 12 34 56 78", "0612345678",
# "06 12 34 56 78", "06.12.34.56.78", or any bare run of 9 to 15 digits. Not part of a
# longer word (a Twilio SID "SM0000..." is not a number) and not a date or a time.
_PHONE = re.compile(
    r"(?<![\w+.:/-])"
    r"(?:"
    r"\+\d{7,15}"  # E.164
    r"|\+\d{2,3}[ .]\d(?:[ .]?\d{2}){4}"  # +33 6 12 34 56 78
    r"|0[1-9](?:[ .]?\d{2}){4}"  # French national format
    r"|\d{9,15}"  # a long bare run of digits
    r")"
    r"(?![\w])"
)


def mask_numbers(text: str) -> str:
    """Every phone-number-looking string in `text`, masked."""
    if not any(c.isdigit() for c in text):
        return text
    return _PHONE.sub(lambda m: mask(re.sub(r"[ .-]", "", m.group(0))), text)


class MaskPhoneNumbers(logging.Filter):
    """Rewrites each record so that no full phone number reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what we have, masked
            message = f"{record.msg} {record.args}"
        record.msg = mask_numbers(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_numbers(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_numbers(record.stack_info)
        for key, value in _extras(record).items():
            if isinstance(value, str):
                setattr(record, key, mask_numbers(value))
        return True


# The attributes every LogRecord has; anything else came from `extra=`.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
    "taskName",
}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the record's
    `extra=` fields, and the traceback as `exception` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def dict_config(fmt: LogFormat = "text", verbose: bool = False) -> dict[str, Any]:
    """The logging setup as a dictConfig mapping: one stderr handler, masked."""
    level = "DEBUG" if verbose else "INFO"
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if fmt == "json" else {"format": TEXT_FORMAT}
    )
    quiet = "DEBUG" if verbose else "WARNING"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"mask": {"()": f"{__name__}.MaskPhoneNumbers"}},
        "formatters": {"main": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "main",
                "filters": ["mask"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "alembic": {"level": quiet},
            # httpx (alerts, timestamps) logs every request at INFO, URL and all: a webhook
            # alert's URL may carry its token.
            "httpx": {"level": quiet},
            "httpcore": {"level": quiet},
            # uvicorn's own loggers go through the root handler (same format, masked).
            "uvicorn": {"level": "WARNING", "handlers": [], "propagate": True},
            "uvicorn.error": {"level": "WARNING", "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }


_current: tuple[LogFormat, bool] = ("text", False)


def configure(fmt: LogFormat = "text", verbose: bool = False) -> None:
    """Set up logging for this process. Like logging.basicConfig, it leaves a root logger
    that already has handlers alone (a host application's, or a test runner's)."""
    global _current
    _current = (fmt, verbose)
    if logging.getLogger().handlers:
        return
    logging.config.dictConfig(dict_config(fmt, verbose))


def current_config() -> dict[str, Any]:
    """The mapping `configure` last applied (for uvicorn to apply in its web processes)."""
    return dict_config(*_current)
