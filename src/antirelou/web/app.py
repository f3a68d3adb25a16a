"""The web application factory."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp

from antirelou.detect import abuse
from antirelou.heap import freeze_heap
from antirelou.service import Service
from antirelou.web import (
    android_hooks,
    dashboard,
    gate,
    limits,
    metrics,
    plivo_hooks,
    twilio_hooks,
    vonage_hooks,
)
from antirelou.web.forwarding import ForwardingCheck
from antirelou.web.state import AppState


class AntirelouApp(FastAPI):
    """FastAPI with the signature gate in front of its whole middleware stack (gate.py)."""

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        state = self.state.antirelou
        return gate.SignatureGate(stack, state.service.settings, state.service.clock, state)


def create_app(service: Service) -> FastAPI:
    app = AntirelouApp(
        title="antirelou",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        # No OpenTelemetry here (Prometheus at /metrics): left on, FastAPI asks the global
        # providers and the environment whether to trace, on every request, forged floods too.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.antirelou = AppState(service)
    app.include_router(twilio_hooks.router)
    app.include_router(vonage_hooks.router)
    app.include_router(plivo_hooks.router)
    app.include_router(android_hooks.router)
    app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    app.add_api_route("/readyz", readyz, methods=["GET"], include_in_schema=False)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(RequestValidationError, _bad_request)
    dashboard.install(app)
    metrics.install(app)
    limits.install(app, service.settings.web)
    # Outermost: it sees the requests the limits refuse too.
    app.add_middleware(ForwardingCheck, seen=app.state.antirelou.unbelieved)
    if service.settings.web.intake == "inline":  # this process decides the texts
        abuse.load()
    return app


def app_from_environment() -> FastAPI:
    """The app factory each web process of `antirelou serve --workers N` calls: settings
    from $ANTIRELOU_CONFIG and the environment. The parent process has already checked
    (or migrated) the schema and synced the lines, and runs the worker."""
    from antirelou.settings import load_settings

    app = create_app(Service.from_settings(load_settings()))
    freeze_heap()
    return app


async def healthz() -> PlainTextResponse:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> PlainTextResponse:
    service = AppState.of(request).service
    await run_in_threadpool(_ping, service)
    return PlainTextResponse("ready")


def _ping(service: Service) -> None:
    with service.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def _database_unavailable(_request: Request, _exc: Exception) -> JSONResponse:
    # The provider will retry (or we lose nothing: we never answered 2xx for it).
    return JSONResponse({"detail": "database unavailable"}, 503, headers={"Retry-After": "5"})


async def _bad_request(_request: Request, exc: Exception) -> JSONResponse:
    """400 naming each bad field and why; never the input itself (it may be a phone number
    or a secret) nor, as str(exc) would, the server's source paths."""
    problems = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = "; ".join(
        f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
        for problem in problems
    )
    return JSONResponse({"detail": detail or "malformed request"}, 400)
