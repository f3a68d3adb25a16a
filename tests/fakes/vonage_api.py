"""A fake Vonage SMS API (`POST /sms/json`) served over real HTTP, for adapter and worker tests.

Vonage answers HTTP 200 for most refusals, with the verdict in each message's `status`; the
scripted behaviours reproduce those and the transport-level failures that matter for
at-most-once sending:

    with FakeVonage() as fake:
        fake.script("throttled", "500_after_create")
        sender = VonageSender(fake.api_key, fake.api_secret, api_base_url=fake.base_url)
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from tests.fakes.server import Call, FakeServer
from tests.fakes.twilio_api import num_segments

# Behaviour -> (status code in the body, error-text) for refusals Vonage answers with 200.
BODY_ERRORS: dict[str, tuple[str, str]] = {
    "throttled": ("1", "Throughput Rate Exceeded - please wait [ 250 ] and retry"),
    "invalid": ("3", "Invalid to address"),
    "barred": ("7", "Number barred"),
    "binds": ("10", "Too Many Existing Binds"),
}
SEND_BEHAVIOURS = frozenset({*BODY_ERRORS, "429", "500", "500_after_create", "401", "hang"})
PRICE_PER_PART = "0.05000000"


class FakeVonage(FakeServer):
    """Context manager running the fake API. With `hang_creates`, "hang" creates the
    message before stalling, like a Vonage that queued it and whose answer was lost."""

    label = "fake-vonage"

    def __init__(
        self,
        api_key: str = "vonage-key",
        api_secret: str = "vonage-secret",  # noqa: S107 - the fake's own test credential
        *,
        hang_seconds: float = 2.0,
        hang_creates: bool = True,
    ) -> None:
        super().__init__(hang_seconds=hang_seconds)
        self.api_key = api_key
        self.api_secret = api_secret
        self.hang_creates = hang_creates
        self._messages: list[dict[str, str]] = []
        self._script = self.script_for(SEND_BEHAVIOURS)
        # The account, for `antirelou check --providers`: its balance (EUR), and its
        # numbers by msisdn (no "+") with their fields (moHttpUrl...).
        self.balance = 10.28
        self.numbers: dict[str, dict[str, object]] = {}

    @property
    def requests(self) -> list[dict[str, str]]:
        """The form of every POST received, in order."""
        return [call.form for call in self.calls]

    @property
    def messages(self) -> list[dict[str, str]]:
        """The messages queued so far (one per text, whatever its parts)."""
        with self.lock:
            return [dict(message) for message in self._messages]

    def script(self, *behaviours: str) -> None:
        """How the next sends are answered, one behaviour each; then "ok" again."""
        self._script.extend(behaviours)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/sms/json", self._send_endpoint, methods=["POST"]),
            Route("/account/get-balance", self._balance_endpoint),
            Route("/account/numbers", self._numbers_endpoint),
        ]

    def _account_call(self, request: Request) -> bool:
        query = dict(request.query_params)
        authorized = (query.get("api_key"), query.get("api_secret")) == (
            self.api_key,
            self.api_secret,
        )
        self.record(Call("GET", request.url.path, authorized, query=query))
        return authorized

    async def _balance_endpoint(self, request: Request) -> Response:
        if not self._account_call(request):
            return JSONResponse({"error-code": "401"}, status_code=401)
        return JSONResponse({"value": self.balance, "autoReload": False})

    async def _numbers_endpoint(self, request: Request) -> Response:
        if not self._account_call(request):
            return JSONResponse({"error-code": "401"}, status_code=401)
        pattern = request.query_params.get("pattern", "")
        numbers = [
            {"country": "FR", "msisdn": msisdn, "type": "mobile-lvn", **fields}
            for msisdn, fields in self.numbers.items()
            if msisdn.startswith(pattern)
        ]
        return JSONResponse({"count": len(numbers), "numbers": numbers})

    async def _send_endpoint(self, request: Request) -> Response:
        received = await request.form()
        form = {key: value for key, value in received.items() if isinstance(value, str)}
        authorized = (form.get("api_key"), form.get("api_secret")) == (
            self.api_key,
            self.api_secret,
        )
        self.record(Call("POST", request.url.path, authorized, form))
        if not authorized:
            return _refusal("4", "Bad Credentials")
        for name in ("from", "to", "text"):
            if not form.get(name):
                return _refusal("2", f"Missing {name}")
        return await self._answer(form, self._script.next())

    async def _answer(self, form: Mapping[str, str], behaviour: str) -> Response:
        if behaviour in BODY_ERRORS:
            return _refusal(*BODY_ERRORS[behaviour])
        if behaviour == "429":
            return PlainTextResponse("Error", status_code=429)
        if behaviour == "401":
            return PlainTextResponse("Invalid API token", status_code=401)
        if behaviour in ("500", "500_after_create"):
            if behaviour == "500_after_create":
                self._create(form)
            return PlainTextResponse("Internal Server Error", status_code=500)
        if behaviour == "hang":
            answer = self._create(form) if self.hang_creates else _parts(form)
            await self.stall()
            return JSONResponse(answer)
        return JSONResponse(self._create(form))

    def _create(self, form: Mapping[str, str]) -> dict[str, object]:
        with self.lock:
            self._messages.append(dict(form))
        return _parts(form)


def _parts(form: Mapping[str, str]) -> dict[str, object]:
    """Vonage's answer: one entry per part, each with its own id and price."""
    count = num_segments(form["text"])
    entries = [
        {
            "to": form["to"],
            "message-id": secrets.token_hex(8).upper(),
            "status": "0",
            "remaining-balance": "10.00000000",
            "message-price": PRICE_PER_PART,
            "network": "20801",
            **({"client-ref": form["client-ref"]} if "client-ref" in form else {}),
        }
        for _ in range(count)
    ]
    return {"message-count": str(count), "messages": entries}


def _refusal(status: str, error_text: str) -> JSONResponse:
    return JSONResponse(
        {"message-count": "1", "messages": [{"status": status, "error-text": error_text}]}
    )


@pytest.fixture
def fake_vonage() -> Iterator[FakeVonage]:
    with FakeVonage() as fake:
        yield fake
