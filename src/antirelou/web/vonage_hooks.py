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
from antirelou.web.requests import decode_form, decode_json_object, decode_query
from antirelou.web.signed import Checked, Forged, Seen, Signed, verified
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


def _check(settings: Settings, now: datetime, seen: Seen) -> Checked:
    """The request's parameters (query, and the body of a POST), refused unless their
    signature vouches for them and they are fresh."""
    pairs = decode_query(seen.query)
    if seen.method == "POST":
        pairs += _body_pairs(seen.media_type, seen.body)
    params = _unique(pairs)
    vonage = settings.vonage
    secret = vonage.signature_secret.get_secret_value()
    reason = refusal(params, secret, vonage.signature_method, now, vonage.max_age)
    return Checked(params, None if reason is None else Forged(reason, reason))


SIGNED = Signed("Vonage", _check)


async def _verified_params(request: Request) -> dict[str, str]:
    return dict(await verified(request, SIGNED))


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
