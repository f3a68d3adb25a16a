"""Twilio webhooks: inbound texts and delivery status callbacks.

Order matters: size limit, form decoding, signature, and only then any write. A forged
request is refused with 403 before it touches the database.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from antirelou.delivery import record_status
from antirelou.providers.errors import MalformedRequest
from antirelou.providers.twilio import parse_inbound, parse_status, validate_signature
from antirelou.settings import Settings
from antirelou.voice import IncomingCall, receive_call, twiml
from antirelou.web.requests import decode_form, public_url
from antirelou.web.signed import Answer, Checked, Forged, Seen, Signed, answered, verified
from antirelou.web.state import AppState

router = APIRouter(prefix="/webhooks/twilio", tags=["webhooks"])
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
TAKEN = Answer(200, "text/xml", EMPTY_TWIML.encode())


FORGED = Forged("missing or wrong signature", "missing or invalid X-Twilio-Signature")


def _check(settings: Settings, _now: datetime, seen: Seen) -> Checked:
    """The decoded form, refused unless X-Twilio-Signature vouches for it."""
    pairs = decode_form(seen.media_type, seen.body)
    signature = seen.headers.get("x-twilio-signature", "")
    url = public_url(settings.public_base, seen.path, seen.query)
    token = settings.twilio.auth_token.get_secret_value()
    signed = bool(token) and validate_signature(url, pairs, signature, token, raw_body=seen.body)
    return Checked(pairs, None if signed else FORGED)


SIGNED = Signed("Twilio", _check)


async def _verified_params(request: Request) -> dict[str, str]:
    return dict(await verified(request, SIGNED))


async def take_sms(state: AppState, pairs: list[tuple[str, str]]) -> Answer:
    """A verified inbound text: stored (decided, or parked for the worker), then empty
    TwiML: replies go out through the REST API. The gate's lane (gate.py) calls it without
    the framework, whose routing and middleware cost more than parking the text; the route
    calls it for what the gate did not read. Raises MalformedRequest."""
    sms = parse_inbound(dict(pairs))
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


@router.post("/status")
async def status_callback(request: Request) -> Response:
    """Delivery news for a reply we sent."""
    params = await _verified_params(request)
    try:
        update = parse_status(params)
    except MalformedRequest as exc:
        raise HTTPException(400, exc.reason) from None
    known = await run_in_threadpool(record_status, AppState.of(request).service, update, params)
    return Response(status_code=204 if known else 202)


@router.post("/voice", response_class=Response)
async def voice_call(request: Request) -> Response:
    """A call to one of our numbers: a short spoken message, or <Reject/> (not billed)."""
    params = await _verified_params(request)
    call_id, caller, line = (params.get(k, "").strip() for k in ("CallSid", "From", "To"))
    if not (call_id.startswith("CA") and caller and line):
        raise HTTPException(400, "CallSid (CA...), From and To are required")
    call = IncomingCall("twilio", call_id, caller, line, params)
    state = AppState.of(request)
    line_settings, decision = await run_in_threadpool(receive_call, state.service, call)
    return Response(twiml(line_settings, decision), media_type="text/xml")
