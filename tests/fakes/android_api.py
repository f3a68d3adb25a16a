"""A fake SMS Gateway for Android API (the app's local server) over real HTTP:
`POST /message` and `GET /message/{id}`, with Basic auth.

Like the app, it refuses a second message with an id it already has: 409 by default (the
app's ConflictException), or 500 with `duplicate_status=500` (older apps let the database
constraint error through).

    with FakeAndroid() as fake:
        sender = AndroidSender(fake.base_url, fake.username, fake.password)
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.fakes.server import Call, FakeServer, basic_auth_matches

# "429" is the cloud server's rate limit; the phone's own server never answers it.
SEND_BEHAVIOURS = frozenset({"400", "429", "500", "500_after_create", "hang"})
LOOKUP_BEHAVIOURS = frozenset({"500", "hang"})


def _error(status: int, text: str) -> JSONResponse:
    return JSONResponse({"message": text}, status_code=status)


class FakeAndroid(FakeServer):
    """Context manager running the fake phone API; see the module docstring."""

    label = "fake-android"

    def __init__(
        self,
        username: str = "sms",
        password: str = "android-pass",  # noqa: S107 - the fake's own test credential
        *,
        hang_seconds: float = 2.0,
        hang_creates: bool = True,
        duplicate_status: int = 409,
    ) -> None:
        super().__init__(hang_seconds=hang_seconds)
        self.username = username
        self.password = password
        self.hang_creates = hang_creates
        self.duplicate_status = duplicate_status
        self._messages: dict[str, dict[str, Any]] = {}
        self._send_script = self.script_for(SEND_BEHAVIOURS)
        self._lookup_script = self.script_for(LOOKUP_BEHAVIOURS)
        # The webhooks registered on the phone, as `GET /webhooks` lists them.
        self.webhooks: list[dict[str, str]] = []

    @property
    def requests(self) -> list[Any]:
        """The JSON body of every POST received, in order."""
        return [call.json for call in self.calls if call.method == "POST"]

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The messages the phone queued, oldest first."""
        with self.lock:
            return [dict(message) for message in self._messages.values()]

    def script(self, *behaviours: str) -> None:
        self._send_script.extend(behaviours)

    def script_lookup(self, *behaviours: str) -> None:
        self._lookup_script.extend(behaviours)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/message", self._send_endpoint, methods=["POST"]),
            Route("/message/{id}", self._lookup_endpoint, methods=["GET"]),
            Route("/webhooks", self._webhooks_endpoint, methods=["GET"]),
        ]

    async def _webhooks_endpoint(self, request: Request) -> Response:
        authorized = self._authorized(request)
        self.record(Call("GET", request.url.path, authorized))
        return JSONResponse(self.webhooks) if authorized else Response(status_code=401)

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization")
        return basic_auth_matches(header, self.username, self.password)

    async def _send_endpoint(self, request: Request) -> Response:
        authorized = self._authorized(request)
        body = json.loads(await request.body() or b"null")
        self.record(Call("POST", request.url.path, authorized, json=body))
        if not authorized:
            return Response(status_code=401)
        problem = _problem(body)
        if problem:
            return _error(400, problem)
        return await self._send(body, self._send_script.next())

    async def _send(self, body: dict[str, Any], behaviour: str) -> Response:
        if behaviour == "400":
            return _error(400, "phoneNumbers: invalid phone number")
        if behaviour == "429":
            return JSONResponse(
                {"message": "too many requests"}, status_code=429, headers={"Retry-After": "2"}
            )
        if behaviour in ("500", "500_after_create"):
            if behaviour == "500_after_create":
                self._create(body)
            return _error(500, "internal error")
        if body.get("id") in self._known():
            return _error(self.duplicate_status, "message with this id already exists")
        if behaviour == "hang":
            if self.hang_creates:
                self._create(body)
            await self.stall()
            return JSONResponse(_state(body), status_code=202)
        return JSONResponse(_state(self._create(body)), status_code=202)

    def _known(self) -> set[str]:
        with self.lock:
            return set(self._messages)

    def _create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        message = dict(body)
        with self.lock:
            self._messages[str(body["id"])] = message
        return message

    async def _lookup_endpoint(self, request: Request) -> Response:
        authorized = self._authorized(request)
        self.record(Call("GET", request.url.path, authorized))
        if not authorized:
            return Response(status_code=401)
        behaviour = self._lookup_script.next()
        if behaviour == "500":
            return _error(500, "internal error")
        if behaviour == "hang":
            await self.stall()
        with self.lock:
            message = self._messages.get(request.path_params["id"])
        if message is None:
            return Response(status_code=404)
        return JSONResponse(_state(message))


def _problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "a JSON object is expected"
    content = body.get("textMessage")
    if not isinstance(content, dict) or not content.get("text"):
        return "Text message is empty"
    if not body.get("phoneNumbers"):
        return "phoneNumbers is empty"
    return None


def _state(message: Mapping[str, Any]) -> dict[str, Any]:
    recipients = [
        {"phoneNumber": number, "state": "Pending", "error": None}
        for number in message.get("phoneNumbers", [])
    ]
    return {"id": message.get("id"), "state": "Pending", "recipients": recipients}


@pytest.fixture
def fake_android() -> Iterator[FakeAndroid]:
    with FakeAndroid() as fake:
        yield fake
