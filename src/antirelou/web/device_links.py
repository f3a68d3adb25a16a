"""Opening a link made on the server that trusts this browser (devices.make_link).

GET shows a button and changes nothing: mail and chat apps open links to preview them, and
a preview must not use the link up. POST (with the login form's CSRF cookie) uses it: the
browser gets a device cookie for the account, then logs in as usual, password and code
asked, its failures counted against it alone.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from antirelou.providers.common import same_text
from antirelou.service import Service
from antirelou.web import actions, cookies, devices, render
from antirelou.web.credentials import address_of
from antirelou.web.guard import service_of
from antirelou.web.i18n import pick_language, translator
from antirelou.web.login import LOGIN_COOKIE, login_page

router = APIRouter(include_in_schema=False)
PATH = "/login/device"
UNUSABLE = "This link is unknown, already used or expired: ask an admin for a new one."


@router.get(PATH, response_class=HTMLResponse)
async def link_page(request: Request, t: str = "") -> HTMLResponse:
    csrf = secrets.token_urlsafe(24)
    context = {"viewer": None, "login_csrf": csrf, "token": t}
    response = render.page(request, "device_link.html", context, lang=pick_language(request))
    cookies.set_private(
        response, service_of(request), LOGIN_COOKIE, csrf, timedelta(hours=1), path="/login",
        samesite="strict",
    )  # fmt: skip
    return response


@router.post(PATH, response_class=HTMLResponse)
async def use_link(
    request: Request, t: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = ""
) -> Response:
    say = translator(pick_language(request))
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not csrf or not expected or not same_text(csrf, expected):
        return login_page(request, "/dashboard", say("The form expired: please try again."), 403)
    service = service_of(request)
    used = await run_in_threadpool(_use, service, t, address_of(request))
    if used is None:
        return login_page(request, "/dashboard", say(UNUSABLE), 403)
    email, device = used
    trusted = say("This browser is trusted for {email}: log in.").format(email=email)
    response = login_page(request, "/dashboard", trusted, kind="ok")
    devices.set_cookie(response, service, device)
    return response


def _use(service: Service, token: str, address: str) -> tuple[str, str] | None:
    with service.engine.begin() as conn:
        used = devices.use_link(conn, token, service.clock.now())
    if used is not None:
        actions.record(service, "web:" + used[0], "device_link_used", used[0], address=address)
    return used
