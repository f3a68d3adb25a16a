"""Plugging the dashboard into the web app: `install(app)` after `create_app(service)`.

It adds the login, the pages, the JSON API under /api/, the public pages and the static
files; the handlers that turn "not logged in" into a redirect (pages) or a 401 (API); and
the small middleware that keeps `service.settings` in step with the operators' edits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from antirelou.web import (
    account_pages,
    admin_pages,
    api,
    api_actions,
    device_links,
    login,
    page_actions,
    pages,
    public,
    render,
)
from antirelou.web.guard import Forbidden, NotLoggedIn
from antirelou.web.i18n import pick_language, translator
from antirelou.web.overrides import LiveSettings
from antirelou.web.state import AppState

STATIC = Path(__file__).parent / "static"
# Paths anyone may fetch. Everything else must refuse an anonymous request (crawl test).
PUBLIC_PATHS = ("/why", "/counter", "/login", "/static/", "/healthz", "/readyz", "/openapi.json")


@dataclass
class DashboardState:
    live: LiveSettings
    public: public.PublicCache
    poll_ms: int


class RefreshOverrides:
    """Pure ASGI middleware (cheap on the webhook path): at most every few seconds, re-read
    the operators' setting overrides, so an edit made in another process takes effect."""

    def __init__(self, app: ASGIApp, live: LiveSettings) -> None:
        self.app = app
        self.live = live

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.live.due():
            await run_in_threadpool(self.live.maybe_refresh)
        await self.app(scope, receive, send)


def install(app: FastAPI, *, poll_ms: int = 5000, public_counter: bool = True) -> None:
    """Add the operators' dashboard, its API and the public pages to `app`.

    Idempotent: a second call (create_app already installed it) only changes the options.
    """
    installed = getattr(app.state, "dashboard", None)
    if isinstance(installed, DashboardState):
        installed.poll_ms = poll_ms
        installed.public.counter_enabled = public_counter
        installed.public.pages.clear()  # /why links to the counter or not
        return
    service = app.state.antirelou.service if isinstance(app.state.antirelou, AppState) else None
    assert service is not None, "call install() on the app made by create_app(service)"
    live = LiveSettings(service)
    live.refresh()
    contact = str(getattr(service.settings.web, "privacy_contact", ""))
    window = min((line.reply_window for line in service.settings.lines), default=None)
    days = window.days if window is not None else 0
    cache = public.PublicCache(contact, public_counter, window_days=days)
    app.state.dashboard = DashboardState(live, cache, poll_ms)
    html = (login, device_links, pages, page_actions, admin_pages, account_pages, public)
    for module in (*html, api, api_actions):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(NotLoggedIn, _not_logged_in)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_middleware(RefreshOverrides, live=live)
    _document_the_api(app)


API_DESCRIPTION = """The operators' JSON API: the dashboard's data and actions.

Authenticate with `Authorization: Bearer <token>`; make a token with
`antirelou tokens create EMAIL` or on the dashboard's API tokens page. A token acts with its
account's role (viewer: read, numbers masked; moderator: act on lines, incidents, held
replies and senders; admin: also the reply, the caps and donations). Every action is audited.
"""


def _document_the_api(app: FastAPI) -> None:
    """/openapi.json describes the JSON API only: provider webhooks are not for clients
    (and one of them answers GET and POST under one operation id)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(
                title="antirelou API",
                version=app.version,
                description=API_DESCRIPTION,
                routes=[*api.router.routes, *api_actions.router.routes],
            )
            _no_422(app.openapi_schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _no_422(spec: dict[str, Any]) -> None:
    """FastAPI documents a 422 on every route with parameters, but this app answers a
    validation error with 400 (app.py), documented by the routers as schemas.Problem."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = spec.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _not_logged_in(request: Request, _exc: Exception) -> Response:
    if _is_api(request):
        return JSONResponse(
            {"detail": "log in, or send an API token: Authorization: Bearer <token>"},
            401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    target = request.url.path if request.method == "GET" else "/dashboard"
    return RedirectResponse(f"/login?next={target}", status_code=303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": str(exc)}, 403)
    lang = pick_language(request)
    context: dict[str, Any] = {
        "viewer": None,
        "title": translator(lang)("Not allowed"),
        "detail": str(exc),
    }
    return render.page(request, "error.html", context, lang=lang, status=403)
