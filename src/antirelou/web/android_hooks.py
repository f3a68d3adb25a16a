"""SMS Gateway for Android webhooks: texts the phone received, and news of our replies.

Register `sms:received` at /webhooks/android/sms and `sms:sent`, `sms:delivered`,
`sms:failed` at /webhooks/android/status; either path takes any of them (the event names
itself). The signature covers the raw body and X-Timestamp, so it is checked before the
JSON is even decoded, and a stale timestamp is refused: nothing is written before both.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from antirelou.delivery import record_status
from antirelou.providers.android import (
    RECEIVED,
    STATUS_EVENTS,
    event_of,
    flatten,
    parse_inbound,
    parse_status,
    refusal,
)
from antirelou.providers.errors import MalformedRequest
from antirelou.settings import Settings
from antirelou.web.refusals import refused
from antirelou.web.requests import Headers, parse_json_object, read_body
from antirelou.web.state import AppState

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks/android", tags=["webhooks"])


# Where the signature gate (gate.py) leaves the body it has verified (see twilio_hooks).
VERIFIED_BODY = "antirelou.android_body"


def body_refusal(settings: Settings, now: datetime, headers: Headers, body: bytes) -> str | None:
    """Why this body must be refused (403), or None when it is signed and fresh."""
    android = settings.android
    return refusal(
        body,
        headers.get("x-signature", ""),
        headers.get("x-timestamp", ""),
        android.signing_key.get_secret_value(),
        now,
        android.max_age,
    )


async def _verified_event(request: Request) -> dict[str, Any]:
    service = AppState.of(request).service
    body = await read_body(request, service.settings.web.max_body_bytes)
    if request.scope.get(VERIFIED_BODY) != body:  # not already checked by the gate
        reason = body_refusal(service.settings, service.clock.now(), request.headers, body)
        if reason is not None:
            refused("Android gateway", reason)
            raise HTTPException(403, reason)
    return parse_json_object(request, body)


def _only_line(settings: Settings) -> str | None:
    """The line the phone serves, when the configuration has exactly one Android line."""
    numbers = [line.number for line in settings.lines if line.provider == "android"]
    return numbers[0] if len(numbers) == 1 else None


async def _received(request: Request, event: dict[str, Any]) -> None:
    state = AppState.of(request)
    sms = parse_inbound(event, _only_line(state.service.settings))
    await state.receive(replace(sms, signature_checked=True))


async def _status(request: Request, event: dict[str, Any]) -> None:
    update = parse_status(event)
    service = AppState.of(request).service
    await run_in_threadpool(record_status, service, update, flatten(event))


async def _event(request: Request) -> Response:
    event = await _verified_event(request)
    try:
        kind = event_of(event)
        if kind == RECEIVED:
            await _received(request, event)
        elif kind in STATUS_EVENTS:
            await _status(request, event)
        else:  # system:ping, mms:received...: acknowledged so the app stops retrying
            log.info("ignored an Android gateway event %r", kind[:40])
    except MalformedRequest as exc:
        raise HTTPException(400, exc.reason) from None
    return Response(status_code=204)


@router.post("/sms", response_class=Response)
async def sms_received(request: Request) -> Response:
    """`sms:received`: a text to the phone."""
    return await _event(request)


@router.post("/status", response_class=Response)
async def message_status(request: Request) -> Response:
    """`sms:sent` / `sms:delivered` / `sms:failed`: what became of a reply."""
    return await _event(request)
