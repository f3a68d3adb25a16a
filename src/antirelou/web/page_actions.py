"""The dashboard's buttons: every POST here needs a role and the session's CSRF token, goes
through antirelou.operations or web.actions (audited), then redirects (POST-redirect-GET).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from antirelou import operations
from antirelou.durations import parse_duration
from antirelou.operations import OperationError
from antirelou.web import actions, exports, feed
from antirelou.web.context import done, refused
from antirelou.web.guard import Administering, Moderating, Viewer, service_of
from antirelou.web.schemas import Clean, DbInt

router = APIRouter(prefix="/dashboard", include_in_schema=False)
Text = Annotated[Clean, Form()]


async def _run(
    request: Request, viewer: Viewer, action: Callable[[], Any], path: str, flash: str
) -> Response:
    try:
        await run_in_threadpool(action)
    except OperationError as exc:
        return await refused(request, viewer, exc)
    return done(path, flash)


@router.post("/lines/{number}/pause")
async def pause(request: Request, viewer: Moderating, number: Clean, reason: Text = "") -> Response:
    service = service_of(request)
    act = lambda: operations.set_paused(service, number, True, viewer.actor, reason)  # noqa: E731
    return await _run(request, viewer, act, "/dashboard/controls", "paused")


@router.post("/lines/{number}/resume")
async def resume(request: Request, viewer: Moderating, number: Clean) -> Response:
    service = service_of(request)
    act = lambda: operations.set_paused(service, number, False, viewer.actor)  # noqa: E731
    return await _run(request, viewer, act, "/dashboard/controls", "resumed")


@router.post("/lines/{number}/incident")
async def open_incident(
    request: Request, viewer: Moderating, number: Clean, note: Text = ""
) -> Response:
    service = service_of(request)
    act = lambda: operations.open_incident(service, number, viewer.actor, note)  # noqa: E731
    return await _run(request, viewer, act, "/dashboard/controls", "incident_opened")


@router.post("/incidents/{incident_id}/close")
async def close_incident(request: Request, viewer: Moderating, incident_id: DbInt) -> Response:
    service = service_of(request)
    act = lambda: operations.close_incident(service, incident_id, viewer.actor)  # noqa: E731
    return await _run(
        request, viewer, act, f"/dashboard/incidents/{incident_id}", "incident_closed"
    )


@router.post("/incidents/{incident_id}/hold")
async def incident_hold(
    request: Request, viewer: Moderating, incident_id: DbInt, on: Text = "1"
) -> Response:
    service = service_of(request)
    act = lambda: actions.set_incident_hold(service, incident_id, on == "1", viewer.actor)  # noqa: E731
    return await _run(request, viewer, act, f"/dashboard/incidents/{incident_id}", "hold")


@router.post("/incidents/{incident_id}/export")
async def incident_export(request: Request, viewer: Moderating, incident_id: DbInt) -> Response:
    bundle = await run_in_threadpool(
        exports.incident_bundle, service_of(request), incident_id, viewer.actor
    )
    if bundle is None:
        raise HTTPException(404, "no such incident")
    return exports.download(bundle, f"antirelou-incident-{incident_id}.json")


@router.post("/held/cancel")
async def cancel_all_held(request: Request, viewer: Moderating) -> Response:
    service = service_of(request)
    act = lambda: operations.cancel_held_replies(service, None, viewer.actor)  # noqa: E731
    return await _run(request, viewer, act, "/dashboard/controls", "cancelled")


@router.post("/held/{reply_id}/release")
async def release_one(request: Request, viewer: Moderating, reply_id: DbInt) -> Response:
    service = service_of(request)
    act = lambda: actions.release_held_reply(service, reply_id, viewer.actor)  # noqa: E731
    response = await _run(request, viewer, act, "/dashboard/controls", "released")
    request.app.state.antirelou.notify_reply()
    return response


@router.post("/held/{reply_id}/cancel")
async def cancel_one(request: Request, viewer: Moderating, reply_id: DbInt) -> Response:
    service = service_of(request)
    act = lambda: actions.cancel_held_reply(service, reply_id, viewer.actor)  # noqa: E731
    return await _run(request, viewer, act, "/dashboard/controls", "cancelled")


def _sender(request: Request, message_id: int) -> tuple[str, str]:
    key = feed.sender_key(service_of(request), message_id)
    if key is None:
        raise HTTPException(404, "no such sender")
    return key


LONGEST_BLOCK = timedelta(days=36_500)  # longer is "for good" (and past it, dates overflow)


def parse_expiry(duration: str) -> timedelta | None:
    """ "" means for good; otherwise a duration such as 1d or 12h."""
    if not duration.strip():
        return None
    try:
        return parse_duration(duration, longest=LONGEST_BLOCK)
    except ValueError as exc:
        raise OperationError(f"{exc}; leave it empty to block for good") from None


@router.post("/senders/{message_id}/block")
async def block(
    request: Request, viewer: Moderating, message_id: DbInt, duration: Text = ""
) -> Response:
    service = service_of(request)
    line, number = _sender(request, message_id)

    def act() -> None:
        expiry = parse_expiry(duration)
        until = None if expiry is None else service.clock.now() + expiry
        actions.block_sender(service, line, number, until, viewer.actor)

    return await _run(request, viewer, act, f"/dashboard/senders/{message_id}", "blocked")


@router.post("/senders/{message_id}/unblock")
async def unblock(request: Request, viewer: Moderating, message_id: DbInt) -> Response:
    service = service_of(request)
    line, number = _sender(request, message_id)
    act = lambda: actions.unblock_sender(service, line, number, viewer.actor)  # noqa: E731
    return await _run(request, viewer, act, f"/dashboard/senders/{message_id}", "unblocked")


@router.post("/senders/{message_id}/hold")
async def sender_hold(
    request: Request, viewer: Moderating, message_id: DbInt, on: Text = "1", note: Text = ""
) -> Response:
    service = service_of(request)
    line, number = _sender(request, message_id)
    act = lambda: actions.set_sender_hold(service, line, number, on == "1", note, viewer.actor)  # noqa: E731
    return await _run(request, viewer, act, f"/dashboard/senders/{message_id}", "hold")


@router.post("/senders/{message_id}/export")
async def sender_export(request: Request, viewer: Moderating, message_id: DbInt) -> Response:
    line, number = _sender(request, message_id)
    bundle = await run_in_threadpool(
        exports.sender_bundle, service_of(request), line, number, viewer.actor
    )
    return exports.download(bundle, f"antirelou-sender-{message_id}.json")


@router.post("/donations")
async def donate(
    request: Request, viewer: Administering, euros: Text = "", note: Text = ""
) -> Response:
    service = service_of(request)

    def act() -> None:
        try:
            amount = float(euros.replace(",", "."))
        except ValueError:
            raise OperationError(f"not an amount: {euros!r}") from None
        operations.donate(service, amount, note, viewer.actor)

    return await _run(request, viewer, act, "/dashboard/controls", "donation")
