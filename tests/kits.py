"""One kit per provider, so the conformance suite can run the same checks on every adapter.

A kit knows how its provider signs and shapes webhooks (built with the adapter's own
signing functions, which the fixture vectors pin down), how to run its fake API, what
the fake saw when a reply was sent, and which scripted failures are transient, ambiguous
or permanent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar
from urllib.parse import urlencode

from antirelou.providers import android, plivo, twilio, vonage
from antirelou.service import Service
from tests.fakes.android_api import FakeAndroid
from tests.fakes.plivo_api import FakePlivo
from tests.fakes.server import FakeServer
from tests.fakes.twilio_api import FakeTwilio
from tests.fakes.vonage_api import FakeVonage
from tests.helpers import LINE

PUBLIC_URL = "https://decoy.example.org"
FORM = "application/x-www-form-urlencoded"
VONAGE_SECRET = "vonage-signature-secret"
ANDROID_KEY = "android-signing-key"


@dataclass(frozen=True)
class WebRequest:
    """A webhook request, ready for the TestClient."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] | None = None
    content: bytes | None = None


class Kit:
    """What the conformance suite needs from a provider; see the module docstring."""

    name: ClassVar[str]
    inbound_path: ClassVar[str]
    status_path: ClassVar[str]
    # Scripted behaviours of the fake: refused before processing, maybe processed, refused.
    transient: ClassVar[str]
    ambiguous: ClassVar[str] = "500_after_create"
    permanent: ClassVar[str]
    expected_codes: ClassVar[tuple[str, ...]] = ("200", "204")
    sends_from_line: ClassVar[bool] = True  # False: the phone sends from its own SIM

    def fake(self) -> FakeServer:
        raise NotImplementedError

    def settings(self, fake: Any) -> dict[str, Any]:
        raise NotImplementedError

    def inbound(
        self, service: Service, message_id: str, sender: str, body: str = "t'es mignonne"
    ) -> WebRequest:
        raise NotImplementedError

    def without_sender(self, service: Service, message_id: str) -> WebRequest:
        """A correctly signed request that lacks the sender: malformed."""
        raise NotImplementedError

    def forged(self, request: WebRequest) -> WebRequest:
        """The same request with its signature tampered with."""
        raise NotImplementedError

    def unsigned(self, request: WebRequest) -> WebRequest:
        raise NotImplementedError

    def delivered(self, service: Service, provider_message_id: str, recipient: str) -> WebRequest:
        raise NotImplementedError

    def message_id(self, n: int) -> str:
        raise NotImplementedError

    def wire(self, number: str) -> str:
        """A number as the provider's API takes it."""
        return number

    def callback(self) -> str | None:
        """The status callback URL a reply carries (the worker builds it)."""
        return f"{PUBLIC_URL}/webhooks/{self.name}/status"

    def sent(self, fake: Any) -> list[dict[str, Any]]:
        """What the fake received for each send, as {to, from, text, callback}."""
        raise NotImplementedError

    def created(self, fake: Any) -> int:
        """How many messages the fake really queued."""
        return len(fake.messages)


def _signed_form(params: Mapping[str, str]) -> bytes:
    return urlencode(list(params.items())).encode()


def _tamper(signature: str) -> str:
    """Same length, same alphabet, one character off."""
    last = signature[-1]
    swap = {"a": "b", "A": "B", "0": "1", "=": "="}
    if last in swap and swap[last] != last:
        return signature[:-1] + swap[last]
    return signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")


# --- Twilio -----------------------------------------------------------------------------


class TwilioKit(Kit):
    name = "twilio"
    inbound_path = "/webhooks/twilio/sms"
    status_path = "/webhooks/twilio/status"
    transient = "429"
    permanent = "21211"

    def fake(self) -> FakeTwilio:
        return FakeTwilio(hang_seconds=1.0)

    def settings(self, fake: FakeTwilio) -> dict[str, Any]:
        return {
            "twilio": {
                "account_sid": fake.account_sid,
                "auth_token": fake.auth_token,
                "api_base_url": fake.base_url,
                "timeout": 0.5,
            }
        }

    def message_id(self, n: int) -> str:
        return f"SM{n:032x}"

    def _post(self, service: Service, path: str, params: dict[str, str]) -> WebRequest:
        token = service.settings.twilio.auth_token.get_secret_value()
        signature = twilio.compute_signature(PUBLIC_URL + path, params, token)
        headers = {"Content-Type": FORM, "X-Twilio-Signature": signature}
        return WebRequest("POST", path, headers, content=_signed_form(params))

    def inbound(
        self, service: Service, message_id: str, sender: str, body: str = "t'es mignonne"
    ) -> WebRequest:
        params = {"MessageSid": message_id, "From": sender, "To": LINE, "Body": body}
        return self._post(service, self.inbound_path, params)

    def without_sender(self, service: Service, message_id: str) -> WebRequest:
        params = {"MessageSid": message_id, "To": LINE, "Body": "x"}
        return self._post(service, self.inbound_path, params)

    def forged(self, request: WebRequest) -> WebRequest:
        signature = request.headers["X-Twilio-Signature"]
        return replace(
            request, headers={**request.headers, "X-Twilio-Signature": _tamper(signature)}
        )

    def unsigned(self, request: WebRequest) -> WebRequest:
        headers = {k: v for k, v in request.headers.items() if k != "X-Twilio-Signature"}
        return replace(request, headers=headers)

    def delivered(self, service: Service, provider_message_id: str, recipient: str) -> WebRequest:
        params = {"MessageSid": provider_message_id, "MessageStatus": "delivered", "To": recipient}
        return self._post(service, self.status_path, params)

    def sent(self, fake: FakeTwilio) -> list[dict[str, Any]]:
        return [
            {
                "to": f["To"],
                "from": f["From"],
                "text": f["Body"],
                "callback": f.get("StatusCallback"),
            }
            for f in fake.requests
        ]


# --- Vonage -----------------------------------------------------------------------------


class VonageKit(Kit):
    name = "vonage"
    inbound_path = "/webhooks/vonage/inbound"
    status_path = "/webhooks/vonage/status"
    transient = "throttled"
    permanent = "invalid"
    expected_codes = ("204",)

    def wire(self, number: str) -> str:
        return number.removeprefix("+")

    def fake(self) -> FakeVonage:
        return FakeVonage(hang_seconds=1.0)

    def settings(self, fake: FakeVonage) -> dict[str, Any]:
        return {
            "vonage": {
                "api_key": fake.api_key,
                "api_secret": fake.api_secret,
                "signature_secret": VONAGE_SECRET,
                "signature_method": "sha256",
                "api_base_url": fake.base_url,
                "timeout": 0.5,
            }
        }

    def message_id(self, n: int) -> str:
        return f"0B{n:014X}"

    def sign(self, service: Service, params: dict[str, str]) -> dict[str, str]:
        """Add timestamp, nonce and sig as Vonage does, with the service's clock."""
        stamped = {
            **params,
            "timestamp": str(int(service.clock.now().timestamp())),
            "nonce": "6bd1b1a0-6a0a-4a8c-9c55-1f6b7c1d2e3f",
        }
        vonage_settings = service.settings.vonage
        sig = vonage.compute_signature(
            stamped,
            vonage_settings.signature_secret.get_secret_value(),
            vonage_settings.signature_method,
        )
        return {**stamped, "sig": sig}

    def inbound_params(self, message_id: str, sender: str, body: str) -> dict[str, str]:
        return {
            "msisdn": sender.removeprefix("+"),
            "to": LINE.removeprefix("+"),
            "messageId": message_id,
            "text": body,
            "type": "unicode",
            "keyword": body.split()[0].upper() if body.split() else "",
            "message-timestamp": "2017-10-27 14:00:00",
        }

    def inbound(
        self, service: Service, message_id: str, sender: str, body: str = "t'es mignonne"
    ) -> WebRequest:
        params = self.sign(service, self.inbound_params(message_id, sender, body))
        return WebRequest("GET", self.inbound_path, params=params)

    def without_sender(self, service: Service, message_id: str) -> WebRequest:
        params = self.inbound_params(message_id, "+33612345678", "x")
        del params["msisdn"]
        return WebRequest("GET", self.inbound_path, params=self.sign(service, params))

    def forged(self, request: WebRequest) -> WebRequest:
        assert request.params is not None
        return replace(request, params={**request.params, "sig": _tamper(request.params["sig"])})

    def unsigned(self, request: WebRequest) -> WebRequest:
        assert request.params is not None
        params = {k: v for k, v in request.params.items() if k not in ("sig", "nonce")}
        return replace(request, params=params)

    def delivered(self, service: Service, provider_message_id: str, recipient: str) -> WebRequest:
        params = {
            "msisdn": recipient.removeprefix("+"),
            "to": LINE.removeprefix("+"),
            "network-code": "20801",
            "messageId": "0C0000002EEBDA56",
            "price": "0.05000000",
            "status": "delivered",
            "scts": "1710271400",
            "err-code": "0",
            "client-ref": provider_message_id,
            "message-timestamp": "2017-10-27 14:00:00",
        }
        return WebRequest("GET", self.status_path, params=self.sign(service, params))

    def sent(self, fake: FakeVonage) -> list[dict[str, Any]]:
        return [
            {"to": f["to"], "from": f["from"], "text": f["text"], "callback": f.get("callback")}
            for f in fake.requests
        ]


# --- Plivo ------------------------------------------------------------------------------


class PlivoKit(Kit):
    name = "plivo"
    inbound_path = "/webhooks/plivo/sms"
    status_path = "/webhooks/plivo/status"
    transient = "429"
    permanent = "400"
    expected_codes = ("200",)
    nonce = "05429567804466091622"

    def wire(self, number: str) -> str:
        return number.removeprefix("+")

    def fake(self) -> FakePlivo:
        return FakePlivo(hang_seconds=1.0)

    def settings(self, fake: FakePlivo) -> dict[str, Any]:
        return {
            "plivo": {
                "auth_id": fake.auth_id,
                "auth_token": fake.auth_token,
                "api_base_url": fake.base_url,
                "timeout": 0.5,
            }
        }

    def message_id(self, n: int) -> str:
        return f"7a242edc-2f57-11e7-98c9-{n:012x}"

    def _post(self, service: Service, path: str, params: dict[str, str]) -> WebRequest:
        token = service.settings.plivo.auth_token.get_secret_value()
        signature = plivo.compute_signature("POST", PUBLIC_URL + path, params, self.nonce, token)
        headers = {
            "Content-Type": FORM,
            "X-Plivo-Signature-V3": signature,
            "X-Plivo-Signature-V3-Nonce": self.nonce,
        }
        return WebRequest("POST", path, headers, content=_signed_form(params))

    def inbound(
        self, service: Service, message_id: str, sender: str, body: str = "t'es mignonne"
    ) -> WebRequest:
        params = {
            "To": LINE.removeprefix("+"),
            "From": sender.removeprefix("+"),
            "TotalRate": "0",
            "Units": "1",
            "Text": body,
            "TotalAmount": "0",
            "Type": "sms",
            "MessageUUID": message_id,
        }
        return self._post(service, self.inbound_path, params)

    def without_sender(self, service: Service, message_id: str) -> WebRequest:
        params = {"To": LINE.removeprefix("+"), "Text": "x", "MessageUUID": message_id}
        return self._post(service, self.inbound_path, params)

    def forged(self, request: WebRequest) -> WebRequest:
        signature = request.headers["X-Plivo-Signature-V3"]
        headers = {**request.headers, "X-Plivo-Signature-V3": _tamper(signature)}
        return replace(request, headers=headers)

    def unsigned(self, request: WebRequest) -> WebRequest:
        headers = {k: v for k, v in request.headers.items() if not k.startswith("X-Plivo")}
        return replace(request, headers=headers)

    def delivered(self, service: Service, provider_message_id: str, recipient: str) -> WebRequest:
        params = {
            "MessageUUID": provider_message_id,
            "Status": "delivered",
            "To": recipient.removeprefix("+"),
            "From": LINE.removeprefix("+"),
            "TotalAmount": "0.00650",
            "TotalRate": "0.00650",
            "Units": "1",
            "ErrorCode": "",
        }
        return self._post(service, self.status_path, params)

    def sent(self, fake: FakePlivo) -> list[dict[str, Any]]:
        return [
            {"to": b["dst"], "from": b["src"], "text": b["text"], "callback": b.get("url")}
            for b in fake.requests
        ]


# --- Android ----------------------------------------------------------------------------


class AndroidKit(Kit):
    name = "android"
    inbound_path = "/webhooks/android/sms"
    status_path = "/webhooks/android/status"
    transient = "429"  # the cloud server's rate limit (the phone itself never throttles)
    sends_from_line = False
    permanent = "400"
    expected_codes = ("204",)

    def callback(self) -> str | None:
        return None  # the app's webhooks are registered once, not given per message

    def fake(self) -> FakeAndroid:
        return FakeAndroid(hang_seconds=1.0)

    def settings(self, fake: FakeAndroid) -> dict[str, Any]:
        return {
            "android": {
                "api_url": fake.base_url,
                "username": fake.username,
                "password": fake.password,
                "signing_key": ANDROID_KEY,
                "timeout": 0.5,
            }
        }

    def message_id(self, n: int) -> str:
        return f"Ey6ECgOkVVFj{n:09d}"

    def _post(self, service: Service, path: str, event: dict[str, Any]) -> WebRequest:
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = str(int(service.clock.now().timestamp()))
        key = service.settings.android.signing_key.get_secret_value()
        headers = {
            "Content-Type": "application/json",
            "X-Signature": android.compute_signature(body, timestamp, key),
            "X-Timestamp": timestamp,
        }
        return WebRequest("POST", path, headers, content=body)

    def _received(self, message_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "deviceId": "ffffffffceb0b1db0000018e937c815b",
            "event": "sms:received",
            "id": message_id,
            "payload": payload,
            "webhookId": "LreFUt-Z3sSq0JufY9uWB",
        }

    def inbound(
        self, service: Service, message_id: str, sender: str, body: str = "t'es mignonne"
    ) -> WebRequest:
        payload = {
            "messageId": "abc123",
            "message": body,
            "sender": sender,
            "recipient": LINE,
            "simNumber": 1,
            "receivedAt": "2017-10-27T16:00:00.000+02:00",
        }
        return self._post(service, self.inbound_path, self._received(message_id, payload))

    def without_sender(self, service: Service, message_id: str) -> WebRequest:
        payload = {"messageId": "abc123", "message": "x", "recipient": LINE}
        return self._post(service, self.inbound_path, self._received(message_id, payload))

    def forged(self, request: WebRequest) -> WebRequest:
        signature = request.headers["X-Signature"]
        return replace(request, headers={**request.headers, "X-Signature": _tamper(signature)})

    def unsigned(self, request: WebRequest) -> WebRequest:
        headers = {k: v for k, v in request.headers.items() if k != "X-Signature"}
        return replace(request, headers=headers)

    def delivered(self, service: Service, provider_message_id: str, recipient: str) -> WebRequest:
        event = {
            "deviceId": "ffffffffceb0b1db0000018e937c815b",
            "event": "sms:delivered",
            "id": "Xy6ECgOkVVFjz3CL48B8D",
            "payload": {
                "messageId": provider_message_id,
                "phoneNumber": recipient,
                "simNumber": 1,
                "deliveredAt": "2017-10-27T16:00:05.000+02:00",
            },
            "webhookId": "LreFUt-Z3sSq0JufY9uWC",
        }
        return self._post(service, self.status_path, event)

    def sent(self, fake: FakeAndroid) -> list[dict[str, Any]]:
        return [
            {
                "to": b["phoneNumbers"][0],
                "from": None,
                "text": b["textMessage"]["text"],
                "callback": None,
            }
            for b in fake.requests
        ]


KITS: list[Kit] = [TwilioKit(), VonageKit(), PlivoKit(), AndroidKit()]
