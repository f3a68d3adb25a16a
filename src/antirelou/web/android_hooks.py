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
from antirelou.web.requests import parse_json_object
from antirelou.web.signed import Checked, Forged, Seen, Signed, verified
from antirelou.web.state import AppState

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks/android", tags=["webhooks"])


def _check(settings: Settings, now: datetime, seen: Seen) -> Checked:
    """The raw body, refused unless X-Signature vouches for it and X-Timestamp is fresh
    (checked before the JSON is even decoded)."""
    android = settings.android
    reason = refusal(
        seen.body,
        seen.headers.get("x-signature", ""),
        seen.headers.get("x-timestamp", ""),
        android.signing_key.get_secret_value(),
        now,
        android.max_age,
    )
    return Checked(seen.body, None if reason is None else Forged(reason, reason))


SIGNED = Signed("Android gateway", _check)


async def _verified_event(request: Request) -> dict[str, Any]:
    return parse_json_object(request, await verified(request, SIGNED))


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
