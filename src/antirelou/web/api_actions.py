"""The JSON API, write side: the same audited actions as the dashboard's buttons.

A bearer token needs no CSRF token; the session cookie does (header X-CSRF-Token), since a
browser would send the cookie along with a forged cross-site request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from antirelou import operations
from antirelou.operations import OperationError
from antirelou.web import actions, feed
from antirelou.web import schemas as s
from antirelou.web.guard import Administering, Moderating, service_of
from antirelou.web.page_actions import parse_expiry

router = APIRouter(
    prefix="/api", tags=["dashboard actions"], responses=s.errors(400, 401, 403, 409)
)


async def _run(action: Callable[[], Any]) -> Any:
    try:
        return await run_in_threadpool(action)
    except OperationError as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/lines/{number}/pause", response_model=s.Done)
async def pause(request: Request, viewer: Moderating, number: s.Clean, body: s.PauseIn) -> s.Done:
    """Kill switch: the line stores texts but sends nothing until resumed."""
    service = service_of(request)
    await _run(lambda: operations.set_paused(service, number, True, viewer.actor, body.reason))
    return s.Done()


@router.post("/lines/{number}/resume", response_model=s.Done)
async def resume(request: Request, viewer: Moderating, number: s.Clean) -> s.Done:
    service = service_of(request)
    await _run(lambda: operations.set_paused(service, number, False, viewer.actor))
    return s.Done()


@router.post("/lines/{number}/incident", response_model=s.Done)
async def open_incident(
    request: Request, viewer: Moderating, number: s.Clean, body: s.NoteIn
) -> s.Done:
    """Open an incident by hand: new senders are held until it is closed by hand."""
    service = service_of(request)
    new_id = await _run(lambda: operations.open_incident(service, number, viewer.actor, body.note))
    return s.Done(id=new_id)


@router.post("/incidents/{incident_id}/close", response_model=s.Done)
async def close_incident(request: Request, viewer: Moderating, incident_id: s.DbInt) -> s.Done:
    service = service_of(request)
    await _run(lambda: operations.close_incident(service, incident_id, viewer.actor))
    return s.Done(id=incident_id)


@router.post("/held/cancel", response_model=s.Done)
async def cancel_held(request: Request, viewer: Moderating, body: s.HeldCancelIn) -> s.Done:
    """Cancel every held reply (of one line, or all)."""
    service = service_of(request)
    count = await _run(lambda: operations.cancel_held_replies(service, body.line, viewer.actor))
    return s.Done(count=count)


@router.post("/held/{reply_id}/release", response_model=s.Done)
async def release(request: Request, viewer: Moderating, reply_id: s.DbInt) -> s.Done:
    """Send one held reply now; its money is reserved like any reply's (caps hold)."""
    service = service_of(request)
    await _run(lambda: actions.release_held_reply(service, reply_id, viewer.actor))
    request.app.state.antirelou.notify_reply()
    return s.Done(id=reply_id)


@router.post("/held/{reply_id}/cancel", response_model=s.Done)
async def cancel(request: Request, viewer: Moderating, reply_id: s.DbInt) -> s.Done:
    service = service_of(request)
    await _run(lambda: actions.cancel_held_reply(service, reply_id, viewer.actor))
    return s.Done(id=reply_id)


def _sender(request: Request, message_id: int) -> tuple[str, str]:
    key = feed.sender_key(service_of(request), message_id)
    if key is None:
        raise HTTPException(404, "no such sender")
    return key


@router.post("/senders/{message_id}/block", response_model=s.Done, responses=s.errors(404))
async def block(
    request: Request, viewer: Moderating, message_id: s.DbInt, body: s.BlockIn
) -> s.Done:
    """Block the sender of message `message_id`, for a while or for good."""
    service = service_of(request)
    line, number = _sender(request, message_id)

    def act() -> None:
        expiry = parse_expiry(body.duration)
        until = None if expiry is None else service.clock.now() + expiry
        actions.block_sender(service, line, number, until, viewer.actor)

    await _run(act)
    return s.Done()


@router.post("/senders/{message_id}/unblock", response_model=s.Done, responses=s.errors(404))
async def unblock(request: Request, viewer: Moderating, message_id: s.DbInt) -> s.Done:
    service = service_of(request)
    line, number = _sender(request, message_id)
    await _run(lambda: actions.unblock_sender(service, line, number, viewer.actor))
    return s.Done()


@router.post("/donations", response_model=s.Done)
async def donate(request: Request, viewer: Administering, body: s.DonationIn) -> s.Done:
    service = service_of(request)
    await _run(lambda: operations.donate(service, body.euros, body.note, viewer.actor))
    return s.Done()


@router.put("/lines/{number}/reply", response_model=s.Done)
async def edit_reply(
    request: Request, viewer: Administering, number: str, body: s.ReplyIn
) -> s.Done:
    """Change a line's reply (stored as an override of the configuration file)."""
    live = request.app.state.dashboard.live
    await _run(lambda: actions.edit_reply(live, number, body.text, viewer.actor))
    return s.Done()


@router.put("/caps", response_model=s.Done)
async def caps(request: Request, viewer: Administering, body: s.CapsIn) -> s.Done:
    live = request.app.state.dashboard.live
    await _run(lambda: actions.edit_caps(live, body.daily_cap, body.total, viewer.actor))
    return s.Done()
