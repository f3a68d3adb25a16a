"""What every dashboard page needs: the operator, the incident banner, the time zone, the
redirect-after-POST messages, and for admins a reverse proxy the server does not believe."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from antirelou.operations import OperationError
from antirelou.service import Service
from antirelou.web import render
from antirelou.web.accounts import Role
from antirelou.web.forwarding import Sighting
from antirelou.web.guard import Viewer, service_of
from antirelou.web.i18n import translator
from antirelou.web.insights import line_statuses
from antirelou.web.reads import reader
from antirelou.web.state import AppState

# Messages a redirect may ask a page to show: keys only, never text from the query string.
FLASHES = {
    "paused": "The line is paused: no reply will be sent.",
    "resumed": "The line answers again.",
    "incident_opened": "Incident opened: new senders are held.",
    "incident_closed": "Incident closed.",
    "released": "The reply is queued.",
    "cancelled": "Cancelled.",
    "blocked": "Sender blocked.",
    "unblocked": "Sender unblocked.",
    "hold": "Legal hold changed.",
    "donation": "Donation recorded.",
    "reply_saved": "The reply is saved: texts from now on get it.",
    "caps_saved": "Caps saved.",
    "user_saved": "Account saved.",
    "token_revoked": "Token revoked.",
    "tokens_revoked": "Every API token of that account is revoked.",
    "password_set": "New password set: that account's sessions are closed.",
    "password_changed": "Password changed: every other session of this account is closed.",
    "others_logged_out": "Your other browsers are logged out and trusted no more.",
}


def _banner(service: Service) -> list[Any]:
    with reader(service).connect() as conn:
        return [s.incident for s in line_statuses(service, conn) if s.incident is not None]


def _unbelieved(request: Request, viewer: Viewer) -> list[Sighting]:
    """Proxies whose X-Forwarded-For this process ignored (web/forwarding.py): admins fix it."""
    if not viewer.can(Role.ADMIN):
        return []
    return AppState.of(request).unbelieved.recent(time.monotonic())


async def show(
    request: Request, viewer: Viewer, template: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """Render a dashboard page for this operator, in their language."""
    service = service_of(request)
    banner = await run_in_threadpool(_banner, service)
    key = request.query_params.get("flash", "")
    flash = translator(viewer.user.language)(FLASHES[key]) if key in FLASHES else None
    base = {
        "viewer": viewer,
        "roles": Role,
        "banner": banner,
        "unbelieved": _unbelieved(request, viewer),
        "zone": service.settings.lines[0].zone,
        "flash": flash,
        "flash_kind": "ok",
    }
    return render.page(
        request, template, {**base, **context}, lang=viewer.user.language, status=status
    )


def done(path: str, flash: str) -> RedirectResponse:
    """Redirect after a successful POST (so a reload does not repeat it)."""
    return RedirectResponse(f"{path}?flash={quote(flash)}", status_code=303)


async def refused(request: Request, viewer: Viewer, error: OperationError) -> HTMLResponse:
    t = translator(viewer.user.language)
    return await show(request, viewer, "error.html", 400, title=t("Not done"), detail=str(error))
