"""Vonage webhooks: inbound texts (and their parts) and delivery receipts.

Vonage calls with GET query parameters, a POST form or a POST JSON object, as set in its
dashboard; each is decoded to the same flat parameters. Order matters: size limit,
decoding, signature and freshness, and only then any write: a forged or replayed request
gets a 403 before it touches the database. Vonage re-sends until it gets a 200 or 204,
for 24 hours, so every request we could store (or already had) is answered 204.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from antirelou.delivery import record_status
from antirelou.providers.errors import MalformedRequest
from antirelou.providers.multipart import Part, receive_part
from antirelou.providers.vonage import parse_inbound, parse_status, refusal
from antirelou.settings import Settings
from antirelou.web.refusals import refused
from antirelou.web.requests import (
    content_type,
    decode_form,
    decode_json_object,
    decode_query,
    read_body,
)
from antirelou.web.state import AppState

router = APIRouter(prefix="/webhooks/vonage", tags=["webhooks"])


def _scalar(name: str, value: Any) -> str:
    """A JSON value as the text Vonage signed: strings as they are, numbers and booleans
    as JavaScript writes them. Nested values are not part of Vonage's webhooks."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, str | int | float):
        return str(value)
    raise HTTPException(400, f"field {name[:40]!r} is not a plain value")


def _body_pairs(media_type: str, body: bytes) -> list[tuple[str, str]]:
    if media_type == "application/json":
        return [(k, _scalar(k, v)) for k, v in decode_json_object(media_type, body).items()]
    if not body:
        return []
    return decode_form(media_type, body)


def _unique(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Vonage never repeats a parameter; a repeated one makes the request ambiguous."""
    params = dict(pairs)
    if len(params) != len(pairs):
        raise HTTPException(400, "a parameter appears twice")
    return params


# Where the signature gate (gate.py) leaves the parameters it has verified (see twilio_hooks).
VERIFIED_PARAMS = "antirelou.vonage_params"


def signed_params(
    settings: Settings, now: datetime, method: str, media_type: str, query: str, body: bytes
) -> tuple[dict[str, str], str | None]:
    """The request's parameters (query, and the body of a POST), and why they must be
    refused (403), or None when their signature vouches for them and they are fresh.
    Raises HTTPException (4xx) for a request that cannot be decoded."""
    pairs = decode_query(query)
    if method == "POST":
        pairs += _body_pairs(media_type, body)
    params = _unique(pairs)
    vonage = settings.vonage
    secret = vonage.signature_secret.get_secret_value()
    reason = refusal(params, secret, vonage.signature_method, now, vonage.max_age)
    return params, reason


async def _verified_params(request: Request) -> dict[str, str]:
    verified = request.scope.get(VERIFIED_PARAMS)
    if verified is not None:
        return dict(verified)
    service = AppState.of(request).service
    body = await read_body(request, service.settings.web.max_body_bytes)
    params, reason = signed_params(
        service.settings,
        service.clock.now(),
        request.method,
        content_type(request),
        request.url.query,
        body,
    )
    if reason is not None:
        refused("Vonage", reason)
        raise HTTPException(403, reason)
    return params


@router.api_route("/inbound", methods=["GET", "POST"], response_class=Response)
async def inbound_sms(request: Request) -> Response:
    """A text (or one part of a long text) to one of our numbers."""
    params = await _verified_params(request)
    try:
        parsed = parse_inbound(params)
    except MalformedRequest as exc:
        raise HTTPException(400, exc.reason) from None
    state = AppState.of(request)
    if isinstance(parsed, Part):  # rare: parts are reassembled on their own path
        if await run_in_threadpool(receive_part, state.service, parsed):
            state.notify_reply()
    else:
        await state.receive(replace(parsed, signature_checked=True))
    return Response(status_code=204)


@router.api_route("/status", methods=["GET", "POST"], response_class=Response)
async def delivery_receipt(request: Request) -> Response:
    """Delivery news for a reply we sent (one receipt per part of a long reply)."""
    params = await _verified_params(request)
    service = AppState.of(request).service
    try:
        update = parse_status(params, service.settings.vonage.price_currency.upper())
    except MalformedRequest as exc:
        raise HTTPException(400, exc.reason) from None
    if update is None:  # "unknown" and other statuses that tell nothing: acknowledged only
        return Response(status_code=204)
    await run_in_threadpool(record_status, service, update, params)
    return Response(status_code=204)
