"""What the provider adapters share: number forms, prices, and one HTTP client that classifies
every failure the same way.

The classification is what keeps sending at-most-once whatever the provider: a failure raised
before a byte left (connection refused, the TLS handshake) was certainly not sent; anything later
(read timeout, 5xx, an answer we cannot read) may have been, and says so with `maybe_sent`, so
the worker asks `find_sent` before it tries again.
"""

from __future__ import annotations

import hmac
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.message import Message

from antirelou.providers.base import SendError
from antirelou.providers.errors import MalformedRequest
from antirelou.providers.wire import Answer, AnswerLost, NotSent, Wire

_MAX_DETAIL = 200
MAX_NUMBER = 32  # the width of the line and sender columns
# A dialable number given without its "+": providers such as Vonage and Plivo drop it.
_BARE_INTERNATIONAL = re.compile(r"[1-9][0-9]{8,14}")


# --- numbers and values -------------------------------------------------------------------


def international(number: str) -> str:
    """'33612345678' -> '+33612345678'; short codes, names and '+...' forms are left alone.

    Lines are configured in E.164 and looked up by exact match, so the number a provider
    gives without its '+' must get it back. Eight digits or fewer is a short code, never a
    line (same rule as phone.classify).
    """
    text = number.strip()
    return "+" + text if _BARE_INTERNATIONAL.fullmatch(text) else text


def bare(number: str) -> str:
    """'+33612345678' -> '33612345678': the form Vonage and Plivo expect when sending."""
    return number.strip().removeprefix("+")


def required(params: Mapping[str, str], name: str) -> str:
    """A parameter that must be present and not blank, or MalformedRequest naming it."""
    value = params.get(name)
    if value is None or not value.strip():
        raise MalformedRequest(f"missing or empty parameter {name}")
    return value


def number(params: Mapping[str, str], name: str) -> str:
    """A required phone number (or sender name) in the form lines are kept in.

    Anything longer than 32 characters is no number: refused here as malformed rather than
    failing later on the database's column size with a 500.
    """
    value = international(required(params, name))
    if len(value) > MAX_NUMBER:
        raise MalformedRequest(f"{name} is too long to be a phone number")
    return value


def optional(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name, "").strip()
    return value or None


def matching(params: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> str:
    """A required parameter that must look like `pattern` (ids become dedup keys)."""
    value = required(params, name)
    if not pattern.fullmatch(value):
        raise MalformedRequest(f"{name} {value[:40]!r} is not {what}")
    return value


MAX_PARTS = 255  # a concatenated SMS numbers its parts in one byte


def billed_parts(params: Mapping[str, str], name: str) -> int | None:
    """How many parts the provider billed (a count from 1 to 255), or None when absent or
    unreadable: a billing detail the body's own count can stand in for, never a reason to
    refuse the text."""
    value = params.get(name, "").strip()
    if not value.isascii() or not value.isdigit():
        return None
    count = int(value)
    return count if 1 <= count <= MAX_PARTS else None


def positive_price(value: object) -> float | None:
    """A price as a positive float, or None when absent or unreadable (providers vary)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        price = abs(float(value))
    except ValueError:
        return None
    return price if math.isfinite(price) else None


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC, the project's convention (see clock.Clock)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def fresh(timestamp: str | None, now: datetime, max_age: timedelta) -> bool:
    """Whether a signed unix timestamp is within `max_age` of `now`, either way.

    A signature proves who sent a request, not when: without this a captured request could
    be replayed at will. The future is bounded too (a clock far ahead is as suspect).
    """
    if timestamp is None or not timestamp.isascii() or not timestamp.strip().isdigit():
        return False
    seconds = int(timestamp.strip())
    if seconds > 10**11:  # milliseconds: refuse rather than guess
        return False
    signed_at = datetime.fromtimestamp(seconds, tz=UTC)
    return abs(as_utc(now) - signed_at) <= max_age


def same_text(computed: str, given: str) -> bool:
    """Constant-time comparison of two secrets (signatures, tokens, codes), as UTF-8 bytes:
    hmac.compare_digest raises TypeError on a str that is not ASCII, and what a client
    sends may be anything."""
    return hmac.compare_digest(computed.encode("utf-8"), given.encode("utf-8"))


def retry_after(headers: Mapping[str, str] | Message) -> float | None:
    """Retry-After in seconds; the HTTP-date form is ignored (the worker has its own backoff)."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


# --- HTTP -------------------------------------------------------------------------------


class Unreachable(Exception):
    """A read-only question could not be asked (network, TLS, a lost answer); scrubbed."""


class ProviderClient:
    """One provider's API over `wire.Wire`, every failure turned into a classified SendError.

    `secrets` are scrubbed from every message it builds: an exception text may quote a URL
    or a header, and error messages end up in logs and in the outbox's `error` column.
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        secrets: Sequence[str],
        timeout: float,
        basic_auth: tuple[str, str] | None = None,
    ) -> None:
        self.provider = provider
        self._secrets = [secret for secret in secrets if secret]
        self._wire = Wire(
            base_url,
            timeout=timeout,
            headers={"Accept": "application/json"},
            basic_auth=basic_auth,
        )

    def scrub(self, text: str) -> str:
        """Belt and braces: no message we build may ever carry a credential."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text[:_MAX_DETAIL]

    def detail(self, message: object) -> str:
        """': <message>' from a provider's error text, scrubbed; '' when there is none."""
        return f": {self.scrub(message)}" if isinstance(message, str) and message else ""

    def post_form(self, path: str, form: Mapping[str, str]) -> Answer:
        """One request that may create a message. Raises SendError on transport failure."""
        return self._sending(lambda: self._wire.post_form(path, form))

    def post_json(self, path: str, payload: object) -> Answer:
        """post_form's twin for APIs that take JSON."""
        return self._sending(lambda: self._wire.post_json(path, payload))

    def lookup(self, path: str, query: Mapping[str, str] | None = None) -> Answer:
        """One read-only request (reconciliation); any failure means "ask again later"."""
        try:
            return self.ask(path, query)
        except Unreachable as exc:
            raise self.lookup_error(str(exc)) from exc

    def ask(self, path: str, query: Mapping[str, str] | None = None) -> Answer:
        """One read-only request whose failure is only reported (`antirelou check
        --providers`), never acted on: raises Unreachable."""
        try:
            return self._wire.get(path, query)
        except (NotSent, AnswerLost) as exc:
            raise Unreachable(self.scrub(str(exc))) from exc

    def _sending(self, request: Callable[[], Answer]) -> Answer:
        try:
            return request()
        except NotSent as exc:
            raise SendError(
                f"could not reach {self.provider} ({self.scrub(str(exc))}); "
                "the message was not sent",
                transient=True,
                maybe_sent=False,
            ) from exc
        except AnswerLost as exc:
            raise SendError(
                f"lost {self.provider}'s answer ({self.scrub(str(exc))}); "
                "the message may have been accepted",
                transient=True,
                maybe_sent=True,
            ) from exc

    def lookup_error(self, what: str) -> SendError:
        """A failed lookup is never "not found": that would let the worker send twice."""
        return SendError(
            f"could not ask {self.provider} about the message ({what}); "
            "try again later rather than resend",
            transient=True,
            maybe_sent=True,
        )

    def maybe_sent(self, status: int, detail: str = "", code: str | None = None) -> SendError:
        """A 5xx or an unreadable 2xx: the provider may have taken the message."""
        return SendError(
            f"{self.provider} answered HTTP {status}{detail}; the message may have been accepted",
            transient=True,
            maybe_sent=True,
            code=code or str(status),
        )

    def throttled(self, answer: Answer, detail: str = "", code: str = "429") -> SendError:
        """A 429: refused before processing, safe to retry after the advertised delay."""
        return SendError(
            f"{self.provider} throttled the request (HTTP {answer.status}){detail}; "
            "it was not processed",
            transient=True,
            maybe_sent=False,
            code=code,
            retry_after=retry_after(answer.headers),
        )

    def refused_credentials(
        self, status: int, detail: str = "", code: str | None = None
    ) -> SendError:
        return SendError(
            f"{self.provider} refused our credentials (HTTP {status}){detail}; check them in "
            "the configuration",
            transient=False,
            code=code or str(status),
        )

    def close(self) -> None:
        """Close the idle HTTP connections."""
        self._wire.close()
