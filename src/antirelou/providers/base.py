"""What every provider adapter gives the core: parsed webhooks and a way to send.

The core (inbound, worker) only ever sees these types. An adapter turns a provider's
wire format into them and back, and classifies its errors as transient or permanent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class InboundSms:
    """One text as the provider reported it, before any decision."""

    provider: str
    provider_id: str  # the provider's message id: the deduplication key
    sender: str  # as given by the provider: E.164, a short code or an alphanumeric name
    recipient: str  # the decoy line's number, E.164
    body: str
    raw: dict[str, str] = field(default_factory=dict)  # every parameter as received
    signature_checked: bool = False
    num_media: int = 0
    # How many parts the provider billed for it, when it says (Twilio NumSegments, Plivo
    # Units, the parts of a Vonage long text that came); None: counted from the body.
    parts: int | None = None


@dataclass(frozen=True)
class Balance:
    """The money on a provider's account, in its own currency."""

    amount: float
    currency: str


class NoBalance(Exception):
    """The provider did not say how much money is on its account; says why (scrubbed)."""


class DeliveryState(enum.StrEnum):
    """Where a sent reply stands according to the provider's status callbacks."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery status callback."""

    provider: str
    provider_message_id: str
    state: DeliveryState
    error_code: str | None = None
    recipient: str | None = None
    price: float | None = None  # what the provider says the reply really cost, positive
    currency: str | None = None  # the price's currency, e.g. "EUR"
    opted_out: bool = False  # the provider says the recipient unsubscribed (e.g. Twilio 21610)


@dataclass(frozen=True)
class OutgoingSms:
    """A reply to send. `reference` is our outbox id: stable across retries."""

    reference: int
    sender: str  # the line's number
    recipient: str
    body: str
    status_callback: str | None = None


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    price: float | None = None
    currency: str | None = None


class SendError(Exception):
    """A send that did not go through.

    `transient` errors may be retried. `maybe_sent` says the provider may have accepted the
    message anyway (timeout, 5xx): the worker must look it up before sending it again.
    `recipient_fault`: the recipient's number cannot take a text (not a number, a landline),
    which says nothing about our account or line: the operators are not alerted for it.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        maybe_sent: bool = False,
        code: str | None = None,
        opted_out: bool = False,
        retry_after: float | None = None,
        recipient_fault: bool = False,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.maybe_sent = maybe_sent
        self.code = code
        self.opted_out = opted_out
        self.retry_after = retry_after
        self.recipient_fault = recipient_fault


class Sender(Protocol):
    """The sending half of an adapter, used by the worker."""

    name: str

    def send(self, sms: OutgoingSms) -> SendResult:
        """Send one SMS. Raises SendError."""
        ...

    def find_sent(self, sms: OutgoingSms, since: datetime) -> SendResult | None:
        """Look for a message already accepted for `sms` since `since` (reconciliation)."""
        ...

    def close(self) -> None: ...
