"""Logging in and out.

The login form has its own CSRF token (a cookie plus the same value in the form), since no
session exists yet: without it another site could log a victim into the attacker's account.
An account with a second factor also needs its authenticator code (totp.py); a wrong code
is a failure like a wrong password. Failures are rate limited per account and per address
(ratelimit.py); a success opens a server-side session whose cookie is HttpOnly,
SameSite=Lax and, behind https, Secure with the __Host- prefix.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from antirelou.providers.common import same_text
from antirelou.service import Service
from antirelou.web import actions, cookies, credentials, devices, places, render
from antirelou.web.accounts import lacks_second_factor
from antirelou.web.credentials import Refusal
from antirelou.web.guard import Acting, Viewer, cookie_name, identify, service_of
from antirelou.web.i18n import pick_language, translator
from antirelou.web.schemas import Clean
from antirelou.web.sessions import SESSION_TTL, close_session, open_session

router = APIRouter(include_in_schema=False)
LOGIN_COOKIE = "antirelou_login"


def _safe_next(target: str) -> str:
    """Only our own paths: never an open redirect to another site."""
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/dashboard"


def login_page(
    request: Request, next_path: str, message: str = "", status: int = 200, kind: str = ""
) -> HTMLResponse:
    """The login form, with its CSRF cookie; `message` above it (`kind` "ok", or an error)."""
    service = service_of(request)
    lang = pick_language(request)
    token = secrets.token_urlsafe(24)
    context = {"viewer": None, "login_csrf": token, "next": _safe_next(next_path)}
    context |= {"flash": message, "flash_kind": kind}
    response = render.page(request, "login.html", context, lang=lang, status=status)
    set_login_csrf(response, service, token)
    return response


def set_login_csrf(response: Response, service: Service, token: str) -> None:
    """The cookie half of a form under /login's CSRF token (no session exists yet)."""
    lasts = timedelta(hours=1)
    cookies.set_private(
        response, service, LOGIN_COOKIE, token, lasts, path="/login", samesite="strict"
    )


def login_csrf_ok(request: Request, sent: str) -> bool:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    return bool(sent and expected and same_text(sent, expected))


@router.get("/login")
async def login_form(request: Request, next: str = "/dashboard") -> Response:
    if await identify(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return login_page(request, next)


# Said only once the password (and code, if any) were right: no help to a guesser, and the
# operator must learn what to do.
NO_SECOND_FACTOR = Refusal(
    "This account needs a second factor first: an admin runs "
    "`antirelou users totp enable EMAIL` on the server.",
    403,
)


@dataclass(frozen=True)
class LoggedIn:
    session: str  # the session cookie's token
    device: str | None  # a new device cookie's token (devices.py), None to keep the one sent


def _try_login(service: Service, email: str, proof: credentials.Proof) -> LoggedIn | Refusal:
    """The cookies' tokens, or why not."""
    user = credentials.check(service, email, proof)
    if isinstance(user, Refusal):
        return user
    if lacks_second_factor(service, user):
        action = "login_refused_no_second_factor"
        actions.record(service, f"web:{user.email}", action, None, address=proof.address)
        return NO_SECOND_FACTOR
    now = service.clock.now()
    with service.engine.begin() as conn:
        token, _csrf = open_session(conn, user.id, now)
        device = devices.remember(conn, proof.device, user.id, now)
    places.record_login(service, user, proof.address)
    return LoggedIn(token, device)


@router.post("/login")
async def login(
    request: Request,
    email: Annotated[Clean, Form()] = "",
    password: Annotated[Clean, Form()] = "",
    code: Annotated[Clean, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/dashboard",
) -> Response:
    if not login_csrf_ok(request, csrf):
        t = translator(pick_language(request))
        return login_page(request, next, t("The form expired: please try again."), 403)
    service = service_of(request)
    proof = credentials.proof_of(request, password, code)
    outcome = await run_in_threadpool(_try_login, service, email, proof)
    if isinstance(outcome, Refusal):
        t = translator(pick_language(request))
        return login_page(request, next, t(outcome.message), outcome.status)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(response, service, outcome.session)
    if outcome.device is not None:
        devices.set_cookie(response, service, outcome.device)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def set_session_cookie(response: Response, service: Service, token: str) -> None:
    """Hand the browser its session (HttpOnly, SameSite=Lax, Secure behind https)."""
    cookies.set_private(response, service, cookie_name(service), token, SESSION_TTL)


def _logout(service: Service, token: str, viewer: Viewer) -> None:
    with service.engine.begin() as conn:
        close_session(conn, token)
    actions.record(service, viewer.actor, "logout", None)


@router.post("/logout")
async def logout(request: Request, viewer: Acting) -> Response:
    service = service_of(request)
    name = cookie_name(service)
    await run_in_threadpool(_logout, service, request.cookies.get(name, ""), viewer)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(name, path="/", secure=cookies.secure(service), httponly=True)
    return response
