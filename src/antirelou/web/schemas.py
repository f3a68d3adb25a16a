"""The JSON API's shapes: what /openapi.json documents and clients can rely on."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from antirelou.money import MAX_DONATION

# An id or other integer the API hands to the database: what a 64-bit column holds (SQLite
# refuses a larger one with an error, which would be a 500 instead of a 400 or a 404).
DbInt = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL characters are not allowed")
    return value


# Every string the API or the dashboard takes in: PostgreSQL cannot store a NUL character
# (the request would fail with a 500 there, and work on SQLite).
Clean = Annotated[str, AfterValidator(_no_nul)]


class SeriesOut(BaseModel):
    span: str
    step_minutes: int
    step_label: str
    starts: list[str]
    texts: list[int]
    new_senders: list[int]


class IncidentBriefOut(BaseModel):
    id: int
    line: str
    opened_at: datetime
    opened_by: str
    signals: list[str]
    text: str = Field(description="a one-line summary in the operator's language")


class LineOut(BaseModel):
    number: str
    provider: str
    paused: bool
    paused_reason: str | None
    state_label: str
    incident_id: int | None


class ProviderBalanceOut(BaseModel):
    provider: str
    amount: float | None = Field(description="in `currency`; None: the provider never said")
    currency: str | None
    amount_label: str
    asked_at: datetime | None = Field(description="when the provider last gave its balance")
    error: str | None = Field(description="why the last question failed, if it did")


class OverviewOut(BaseModel):
    now: datetime
    day: str
    texts_today: int
    new_senders_today: int
    replies_sent_today: int
    replied_today: int
    held_today: int
    refused_today: int
    held_now: int
    queued_now: int
    spent_today_micros: int = Field(
        description="spent and reserved on replies and answered calls today, micro-euros"
    )
    spent_today_label: str
    daily_cap_micros: int
    pot_micros: int
    pot_left_micros: int
    pot_left_label: str
    days_left: float | None
    days_left_label: str
    provider_balances: list[ProviderBalanceOut]
    lines: list[LineOut]
    incidents: list[IncidentBriefOut]
    series: SeriesOut


class MessageOut(BaseModel):
    id: int
    line: str
    sender: str = Field(description="masked (+336••••••78) for viewers")
    body: str
    received_at: datetime
    decision: str
    reasons: list[str]
    abuse: int
    signals: list[str]
    incident_id: int | None
    reply_status: str | None
    reply_id: int | None


class MessagesOut(BaseModel):
    messages: list[MessageOut]
    next_before: int | None = Field(description="pass as `before` for the next page")
    searched_since: datetime | None


class ReplyOut(BaseModel):
    id: int
    status: str
    created_at: datetime
    sent_at: datetime | None
    segments: int
    cost_micros: int | None
    error: str | None


class SenderOut(BaseModel):
    line: str
    number: str
    first_seen: datetime
    last_seen: datetime
    message_count: int
    hostile_texts: int
    raider_signals: list[str]
    blocked_until: datetime | None
    opted_out_at: datetime | None
    last_reply_at: datetime | None
    legal_hold: bool
    messages: list[MessageOut]
    replies: list[ReplyOut]


class IncidentOut(BaseModel):
    id: int
    line: str
    opened_at: datetime
    opened_by: str
    closed_at: datetime | None
    closed_by: str | None
    signals: list[str]
    figures: dict[str, object]
    legal_hold: bool
    texts: int


class ClusterOut(BaseModel):
    text: str
    senders: int
    texts: int


class TopSenderOut(BaseModel):
    message_id: int
    sender: str
    texts: int


class IncidentDetailOut(IncidentOut):
    timeline: SeriesOut
    top_senders: list[TopSenderOut]
    clusters: list[ClusterOut]
    held: int
    decisions: dict[str, int]


class HeldOut(BaseModel):
    id: int
    line: str
    recipient: str
    held_at: datetime
    message_id: int


class PreviewOut(BaseModel):
    encoding: str
    units: int
    segments: int
    per_segment: int
    offending: list[str]
    offending_label: str
    cost_per_reply: float
    cost_per_1000_senders: float
    currency: str
    gsm7_rewrite: str | None = Field(description="a cheaper GSM-7 version, when it differs")
    gsm7_segments: int | None


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    details: str


class PauseIn(BaseModel):
    reason: Clean = ""


class NoteIn(BaseModel):
    note: Clean = ""


class BlockIn(BaseModel):
    duration: Clean = Field("", description='e.g. "1d", "12h"; empty blocks for good')


class DonationIn(BaseModel):
    euros: float = Field(ge=-MAX_DONATION, le=MAX_DONATION)
    note: Clean = ""


class ReplyIn(BaseModel):
    text: Clean


class CapsIn(BaseModel):
    daily_cap: float = Field(ge=0)
    total: float = Field(ge=0)


class HeldCancelIn(BaseModel):
    line: Clean | None = None


class Done(BaseModel):
    ok: bool = True
    id: int | None = None
    count: int | None = None


class Problem(BaseModel):
    """Every error answer of the API (validation errors too: 400, not FastAPI's 422)."""

    detail: str


_ERRORS = {
    400: "malformed parameters or body",
    401: "no valid session or API token",
    403: "the role, or the session's CSRF token, does not allow it",
    404: "no such row",
    409: "the action does not apply (unknown line, not held, not open...)",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error status codes."""
    return {code: {"model": Problem, "description": _ERRORS[code]} for code in codes}
