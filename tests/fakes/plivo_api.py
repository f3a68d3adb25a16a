"""A fake Plivo Message API served over real HTTP: send (`POST .../Message/`) and the
message detail record list (`GET .../Message/`) used for reconciliation.

    with FakePlivo() as fake:
        fake.script("500_after_create")
        sender = PlivoSender(fake.auth_id, fake.auth_token, api_base_url=fake.base_url)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.fakes.server import Call, FakeServer, basic_auth_matches
from tests.fakes.twilio_api import num_segments

SEND_BEHAVIOURS = frozenset({"400", "429", "500", "500_after_create", "hang"})
LIST_BEHAVIOURS = frozenset({"500", "hang"})
MESSAGES_PATH = "/v1/Account/{auth_id}/Message/"


def _error(status: int, text: str) -> JSONResponse:
    return JSONResponse({"api_id": str(uuid.uuid4()), "error": text}, status_code=status)


class FakePlivo(FakeServer):
    """Context manager running the fake API. With `hang_creates`, "hang" creates the
    message before stalling, like a Plivo that queued it and whose answer was lost."""

    label = "fake-plivo"

    def __init__(
        self,
        auth_id: str = "MAFAKEAUTHID00000000",
        auth_token: str = "plivo-token",  # noqa: S107 - the fake's own test credential
        *,
        hang_seconds: float = 2.0,
        hang_creates: bool = True,
    ) -> None:
        super().__init__(hang_seconds=hang_seconds)
        self.auth_id = auth_id
        self.auth_token = auth_token
        self.hang_creates = hang_creates
        self._messages: list[dict[str, Any]] = []
        self._send_script = self.script_for(SEND_BEHAVIOURS)
        self._list_script = self.script_for(LIST_BEHAVIOURS)
        # The account, for `antirelou check --providers`: its credit (USD), its numbers
        # (no "+") with the application each is attached to, and the applications.
        self.cash_credits = "23.28"
        self.numbers: dict[str, str | None] = {}  # number -> application id
        self.applications: dict[str, dict[str, str]] = {}  # id -> message_url, message_method

    @property
    def requests(self) -> list[Any]:
        """The JSON body of every POST received, in order."""
        return [call.json for call in self.calls if call.method == "POST"]

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The messages queued so far, oldest first."""
        with self.lock:
            return [dict(message) for message in self._messages]

    def script(self, *behaviours: str) -> None:
        self._send_script.extend(behaviours)

    def script_list(self, *behaviours: str) -> None:
        self._list_script.extend(behaviours)

    def routes(self) -> list[BaseRoute]:
        return [
            Route(MESSAGES_PATH, self._endpoint, methods=["GET", "POST"]),
            Route("/v1/Account/{auth_id}/", self._account_endpoint),
            Route("/v1/Account/{auth_id}/Number/{number}/", self._number_endpoint),
            Route("/v1/Account/{auth_id}/Application/{app}/", self._application_endpoint),
        ]

    def _account_call(self, request: Request) -> Response | None:
        """None when the request may be answered, else the refusal."""
        header = request.headers.get("authorization")
        authorized = basic_auth_matches(header, self.auth_id, self.auth_token)
        self.record(Call("GET", request.url.path, authorized))
        if not authorized:
            return _error(401, "authentication failed")
        if request.path_params["auth_id"] != self.auth_id:
            return _error(404, "not found")
        return None

    async def _account_endpoint(self, request: Request) -> Response:
        refusal = self._account_call(request)
        return refusal or JSONResponse({"auth_id": self.auth_id, "cash_credits": self.cash_credits})

    async def _number_endpoint(self, request: Request) -> Response:
        number = request.path_params["number"]
        if refusal := self._account_call(request):
            return refusal
        if number not in self.numbers:
            return _error(404, "not found")
        app = self.numbers[number]
        path = f"/v1/Account/{self.auth_id}/Application/{app}/" if app else None
        return JSONResponse({"number": number, "application": path, "sms_enabled": True})

    async def _application_endpoint(self, request: Request) -> Response:
        if refusal := self._account_call(request):
            return refusal
        app = self.applications.get(request.path_params["app"])
        return (
            JSONResponse({"app_id": request.path_params["app"], **app})
            if app
            else _error(404, "not found")
        )

    async def _endpoint(self, request: Request) -> Response:
        authorized = basic_auth_matches(
            request.headers.get("authorization"), self.auth_id, self.auth_token
        )
        body = json.loads(await request.body() or b"null") if request.method == "POST" else None
        query = dict(request.query_params)
        self.record(Call(request.method, request.url.path, authorized, query=query, json=body))
        if not authorized:
            return _error(401, "authentication failed")
        if request.path_params["auth_id"] != self.auth_id:
            return _error(404, "not found")
        if request.method == "POST":
            return await self._send(body, self._send_script.next())
        return await self._list(query, self._list_script.next())

    async def _send(self, body: Any, behaviour: str) -> Response:
        if not isinstance(body, dict) or not all(body.get(k) for k in ("src", "dst", "text")):
            return _error(400, "src, dst and text are required")
        if behaviour == "400":
            return _error(400, "invalid dst number")
        if behaviour == "429":
            return _error(429, "too many requests")
        if behaviour in ("500", "500_after_create"):
            if behaviour == "500_after_create":
                self._create(body)
            return _error(500, "internal error")
        if behaviour == "hang":
            record = self._create(body) if self.hang_creates else _record(body)
            await self.stall()
            return _queued(record)
        return _queued(self._create(body))

    def _create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        record = _record(body)
        with self.lock:
            self._messages.append(record)
        return record

    async def _list(self, query: Mapping[str, str], behaviour: str) -> Response:
        if behaviour == "500":
            return _error(500, "internal error")
        if behaviour == "hang":
            await self.stall()
        limit, offset = int(query.get("limit", "20")), int(query.get("offset", "0"))
        with self.lock:
            found = [m for m in reversed(self._messages) if _listed(m, query)]
        page = found[offset : offset + limit]
        more = offset + limit < len(found)
        next_uri = f"{MESSAGES_PATH}?limit={limit}&offset={offset + limit}" if more else None
        meta = {"limit": limit, "offset": offset, "next": next_uri, "previous": None}
        objects = [{k: v for k, v in m.items() if k != "text"} for m in page]
        return JSONResponse({"api_id": str(uuid.uuid4()), "meta": meta, "objects": objects})


def _record(body: Mapping[str, Any]) -> dict[str, Any]:
    """A message detail record; MDRs carry no text, kept here only for the tests."""
    now = datetime.now(UTC)
    return {
        "message_uuid": str(uuid.uuid4()),
        "from_number": body["src"],
        "to_number": body["dst"],
        "text": body["text"],
        "message_direction": "outbound",
        "message_state": "queued",
        "message_time": now.strftime("%Y-%m-%d %H:%M:%S.%f") + "+00:00",
        "message_type": "sms",
        "units": num_segments(str(body["text"])),
        "total_amount": "0.00000",
        "total_rate": "0.00500",
        "error_code": None,
    }


def _queued(record: Mapping[str, Any]) -> JSONResponse:
    return JSONResponse(
        {
            "api_id": str(uuid.uuid4()),
            "message": "message(s) queued",
            "message_uuid": [record["message_uuid"]],
        },
        status_code=202,
    )


def _listed(record: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    if query.get("message_direction", "outbound") != record["message_direction"]:
        return False
    since = query.get("message_time__gte")
    if since is None:
        return True
    at = datetime.fromisoformat(str(record["message_time"]))
    return at >= datetime.fromisoformat(since).replace(tzinfo=UTC)


@pytest.fixture
def fake_plivo() -> Iterator[FakePlivo]:
    with FakePlivo() as fake:
        yield fake
