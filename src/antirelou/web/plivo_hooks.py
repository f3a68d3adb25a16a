"""Plivo webhooks: inbound texts (message_url) and message status callbacks (url).

Order matters: size limit, form decoding, X-Plivo-Signature-V3, and only then any write.
A forged request is refused with 403 before it touches the database.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from antirelou.delivery import record_status
from antirelou.providers.errors import MalformedRequest
from antirelou.providers.plivo import parse_inbound, parse_status, validate_signature
from antirelou.settings import Settings
from antirelou.web.requests import decode_form, public_url
from antirelou.web.signed import Answer, Checked, Forged, Seen, Signed, answered, verified
from antirelou.web.state import AppState

router = APIRouter(prefix="/webhooks/plivo", tags=["webhooks"])


FORGED = Forged("missing or wrong signature", "missing or invalid X-Plivo-Signature-V3")


def _check(settings: Settings, _now: datetime, seen: Seen) -> Checked:
    """The decoded form, refused unless X-Plivo-Signature-V3 vouches for it."""
    pairs = decode_form(seen.media_type, seen.body)
    signature = seen.headers.get("x-plivo-signature-v3", "")
    nonce = seen.headers.get("x-plivo-signature-v3-nonce", "")
    url = public_url(settings.public_base, seen.path, seen.query)
    token = settings.plivo.auth_token.get_secret_value()
    signed = validate_signature("POST", url, pairs, signature, nonce, token)
    return Checked(pairs, None if signed else FORGED)


SIGNED = Signed("Plivo", _check)


def _params(pairs: list[tuple[str, str]]) -> dict[str, str]:
    params = dict(pairs)
    if len(params) != len(pairs):  # Plivo never repeats one: which value would count?
        raise MalformedRequest("a parameter appears twice")
    return params


async def _verified_params(request: Request) -> dict[str, str]:
    try:
        return _params(await verified(request, SIGNED))
    except MalformedRequest as exc:
        raise HTTPException(400, exc.reason) from None


TAKEN = Answer(200, None)


async def take_sms(state: AppState, pairs: list[tuple[str, str]]) -> Answer:
    """A verified inbound text, stored; replies go out through the Message API, not here.
    The gate's lane, and the route's work (see twilio_hooks.take_sms). Raises
    MalformedRequest."""
    sms = parse_inbound(_params(pairs))
    await state.receive(replace(sms, signature_checked=True))
    return TAKEN


@router.post("/sms", response_class=Response)
async def inbound_sms(request: Request) -> Response:
    """A text to one of our numbers (usually taken by the gate's lane, see take_sms)."""
    pairs = await verified(request, SIGNED)
    try:
        return answered(await take_sms(AppState.of(request), pairs))
    except MalformedRequest as exc:
        raise HTTPException(400, exc.reason) from None


@router.post("/status", response_class=Response)
async def status_callback(request: Request) -> Response:
    """Delivery news for a reply we sent."""
    params = await _verified_params(request)
    service = AppState.of(request).service
    try:
        update = parse_status(params, service.settings.plivo.price_currency.upper())
    except MalformedRequest as exc:
        raise HTTPException(400, exc.reason) from None
    known = await run_in_threadpool(record_status, service, update, params)
    return Response(status_code=204 if known else 202)
