"""A fake Twilio Messages API served over real HTTP, for adapter and worker tests.

It runs uvicorn in a background thread on 127.0.0.1 so that the real httpx client, its
timeouts and its connection handling are exercised, not a mocked transport. Failures are
scripted per request (`script`) to reproduce the cases that matter for at-most-once
sending: a 500 after the message was created, a hang past the client's timeout, 429s...

    with FakeTwilio() as fake:
        fake.script("500_after_create")
        sender = TwilioSender(fake.account_sid, fake.auth_token, api_base_url=fake.base_url)
"""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.fakes.server import Call, FakeServer, basic_auth_matches

__all__ = ["Call", "FakeTwilio", "fake_twilio", "num_segments"]

SEND_BEHAVIOURS = frozenset(
    {"ok", "500", "500_after_create", "429", "21610", "21211", "21614", "21408", "hang"}
)
LIST_BEHAVIOURS = frozenset({"ok", "500", "hang"})
MESSAGES_PATH = "/2010-04-01/Accounts/{account_sid}/Messages.json"
ACCOUNT_PATH = "/2010-04-01/Accounts/{account_sid}"

_ERRORS: dict[str, tuple[int, int, str]] = {
    "500": (500, 20500, "Internal Server Error"),
    "500_after_create": (500, 20500, "Internal Server Error"),
    "429": (429, 20429, "Too Many Requests"),
    "21610": (400, 21610, "Attempt to send to unsubscribed recipient"),
    # As Twilio words it, quoting the number.
    "21211": (400, 21211, "The 'To' number {To} is not a valid phone number."),
    "21614": (400, 21614, "'To' number is not a valid mobile number"),
    "21408": (
        400,
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by the "
        "'To' number: {To}.",
    ),
}
_REQUIRED = (("To", 21604, "A 'To' phone number is required."),
             ("From", 21603, "A 'From' phone number is required."),
             ("Body", 21602, "Message body is required."))  # fmt: skip

_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


def num_segments(body: str) -> int:
    """Roughly what Twilio bills: GSM-7 160/153 per part, else UCS-2 70/67."""
    if all(char in _GSM7 or char in _GSM7_EXTENDED for char in body):
        units = len(body) + sum(char in _GSM7_EXTENDED for char in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if units <= single else math.ceil(units / multi)


def _error(status: int, code: int, message: str) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    headers = {"Retry-After": "1"} if status == 429 else None
    return JSONResponse(body, status_code=status, headers=headers)


class FakeTwilio(FakeServer):
    """Context manager running the fake API; see the module docstring.

    `hang_seconds` is how long "hang" stalls before answering (longer than the client's
    timeout in the tests). With `hang_creates` the message is created BEFORE the stall,
    like a Twilio that accepted it and whose answer was lost, so `find_sent` can see it.
    `latency` delays every POST's answer, like the real API's few hundred milliseconds;
    `most_in_flight` is the most POSTs it was answering at once.
    """

    label = "fake-twilio"

    def __init__(
        self,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "test-token",  # noqa: S107 - the fake's own test credential
        *,
        hang_seconds: float = 2.0,
        hang_creates: bool = True,
    ) -> None:
        super().__init__(hang_seconds=hang_seconds)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.hang_creates = hang_creates
        self._requests: list[dict[str, str]] = []
        self._messages: list[dict[str, object]] = []
        self._send_script = self.script_for(SEND_BEHAVIOURS)
        self.latency = 0.0
        self.most_in_flight = 0
        self._in_flight = 0
        self._list_script = self.script_for(LIST_BEHAVIOURS)
        # The account, for `antirelou check --providers`: its balance, and its numbers by
        # E.164 number (sms_url, sms_method, voice_url...), as the IncomingPhoneNumber
        # resource names them.
        self.balance = {"balance": "12.34", "currency": "USD"}
        self.numbers: dict[str, dict[str, object]] = {}

    # --- what tests read and script ---------------------------------------------------

    @property
    def requests(self) -> list[dict[str, str]]:
        """The form of every POST received, in order (a snapshot)."""
        with self.lock:
            return [dict(form) for form in self._requests]

    @property
    def messages(self) -> list[dict[str, object]]:
        """The messages created so far, oldest first (a snapshot)."""
        with self.lock:
            return [dict(message) for message in self._messages]

    def script(self, *behaviours: str) -> None:
        """How the next POSTs are answered, one behaviour each; then "ok" again."""
        self._send_script.extend(behaviours)

    def script_list(self, *behaviours: str) -> None:
        """How the next GETs (message listings) are answered; then "ok" again."""
        self._list_script.extend(behaviours)

    # --- the API ------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route(MESSAGES_PATH, self._messages_endpoint, methods=["GET", "POST"]),
            Route(f"{ACCOUNT_PATH}/Balance.json", self._balance_endpoint),
            Route(f"{ACCOUNT_PATH}/IncomingPhoneNumbers.json", self._numbers_endpoint),
        ]

    def _account_call(self, request: Request) -> bool:
        authorized = self._authorized(request.headers.get("authorization"))
        query = dict(request.query_params)
        self.record(Call("GET", request.url.path, authorized, query=query))
        return authorized and request.path_params["account_sid"] == self.account_sid

    async def _balance_endpoint(self, request: Request) -> Response:
        if not self._account_call(request):
            return _error(401, 20003, "Authenticate")
        return JSONResponse({"account_sid": self.account_sid, **self.balance})

    async def _numbers_endpoint(self, request: Request) -> Response:
        if not self._account_call(request):
            return _error(401, 20003, "Authenticate")
        wanted = request.query_params.get("PhoneNumber")
        numbers = [
            {"phone_number": number, "sms_method": "POST", "voice_method": "POST", **fields}
            for number, fields in self.numbers.items()
            if wanted in (None, number)
        ]
        return JSONResponse({"incoming_phone_numbers": numbers, "page": 0})

    def _authorized(self, header: str | None) -> bool:
        return basic_auth_matches(header, self.account_sid, self.auth_token)

    async def _messages_endpoint(self, request: Request) -> Response:
        authorized = self._authorized(request.headers.get("authorization"))
        form: dict[str, str] = {}
        if request.method == "POST":
            received = await request.form()
            form = {key: value for key, value in received.items() if isinstance(value, str)}
        call = Call(request.method, request.url.path, authorized, form, dict(request.query_params))
        self.record(call)
        if request.method == "POST":
            with self.lock:
                self._requests.append(form)
        if not authorized:
            return _error(401, 20003, "Authenticate")
        if request.path_params["account_sid"] != self.account_sid:
            return _error(404, 20404, "The requested resource was not found")
        if request.method == "POST":
            return await self._timed_send(form)
        return await self._list(call.query, self._list_script.next())

    async def _timed_send(self, form: Mapping[str, str]) -> Response:
        with self.lock:
            self._in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self._in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            return await self._send(form, self._send_script.next())
        finally:
            with self.lock:
                self._in_flight -= 1

    async def _send(self, form: Mapping[str, str], behaviour: str) -> Response:
        for name, code, message in _REQUIRED:
            if not form.get(name):
                return _error(400, code, message)
        if behaviour in _ERRORS:
            if behaviour == "500_after_create":
                self._create(form)
            status, code, message = _ERRORS[behaviour]
            return _error(status, code, message.format(To=form.get("To", "")))
        if behaviour == "hang":
            created = self._create(form) if self.hang_creates else self._new_message(form)
            await self.stall()
            return JSONResponse(created, status_code=201)
        return JSONResponse(self._create(form), status_code=201)

    def _new_message(self, form: Mapping[str, str]) -> dict[str, object]:
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC).replace(microsecond=0))
        return {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": form["From"],
            "body": form["Body"],
            "status": "queued",
            "direction": "outbound-api",
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "num_segments": str(num_segments(form["Body"])),
            "num_media": "0",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "messaging_service_sid": None,
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }

    def _create(self, form: Mapping[str, str]) -> dict[str, object]:
        message = self._new_message(form)
        with self.lock:
            self._messages.append(message)
        return message

    async def _list(self, query: Mapping[str, str], behaviour: str) -> Response:
        if behaviour == "500":
            return _error(*_ERRORS["500"])
        if behaviour == "hang":
            await self.stall()
        page_size = int(query.get("PageSize", "50"))
        with self.lock:
            found = [m for m in reversed(self._messages) if _listed(m, query)]
        return JSONResponse(
            {
                "messages": found[:page_size],
                "page": 0,
                "page_size": page_size,
                "first_page_uri": None,
                "next_page_uri": None,
                "previous_page_uri": None,
                "uri": MESSAGES_PATH.format(account_sid=self.account_sid),
            }
        )


def _listed(message: Mapping[str, object], query: Mapping[str, str]) -> bool:
    """Twilio's list filters: To, From, and "DateSent>" (that day or later, inclusive).

    Our messages are never really sent, so the day filter applies to date_created.
    """
    if "To" in query and message["to"] != query["To"]:
        return False
    if "From" in query and message["from"] != query["From"]:
        return False
    since = query.get("DateSent>")
    if since is None:
        return True
    created = parsedate_to_datetime(str(message["date_created"])).date()
    return created >= date.fromisoformat(since)


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A running FakeTwilio with the default credentials, stopped after the test."""
    with FakeTwilio() as fake:
        yield fake
