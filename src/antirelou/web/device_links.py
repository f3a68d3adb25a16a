"""Opening a link made on the server that trusts this browser (devices.make_link).

GET shows a button and changes nothing: mail and chat apps open links to preview them, and
a preview must not use the link up. POST (with the login form's CSRF cookie) uses it: the
browser gets a device cookie for the account, then logs in as usual, password and code
asked, its failures counted against it alone.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from antirelou.service import Service
from antirelou.web import actions, devices, render
from antirelou.web.credentials import address_of
from antirelou.web.guard import service_of
from antirelou.web.i18n import pick_language, translator
from antirelou.web.login import login_csrf_ok, login_page, set_login_csrf

router = APIRouter(include_in_schema=False)
PATH = "/login/device"
LONGEST = 64  # a link's token is 43 characters (token_urlsafe(32))
UNUSABLE = "This link is unknown, already used or expired: ask an admin for a new one."


@router.get(PATH, response_class=HTMLResponse)
async def link_page(
    request: Request, t: Annotated[str, Query(max_length=LONGEST)] = ""
) -> HTMLResponse:
    csrf = secrets.token_urlsafe(24)
    context = {"viewer": None, "login_csrf": csrf, "token": t}
    response = render.page(request, "device_link.html", context, lang=pick_language(request))
    set_login_csrf(response, service_of(request), csrf)
    return response


@router.post(PATH, response_class=HTMLResponse)
async def use_link(
    request: Request,
    t: Annotated[str, Form(max_length=LONGEST)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    say = translator(pick_language(request))
    if not login_csrf_ok(request, csrf):
        return login_page(request, "/dashboard", say("The form expired: please try again."), 403)
    service = service_of(request)
    browser = devices.token_of(request, service)
    used = await run_in_threadpool(_use, service, t, browser, address_of(request))
    if used is None:
        return login_page(request, "/dashboard", say(UNUSABLE), 403)
    email, device = used
    trusted = say("This browser is trusted for {email}: log in.").format(email=email)
    response = login_page(request, "/dashboard", trusted, kind="ok")
    if device is not None:
        devices.set_cookie(response, service, device)
    return response


def _use(
    service: Service, token: str, browser: str | None, address: str
) -> tuple[str, str | None] | None:
    with service.engine.begin() as conn:
        used = devices.use_link(conn, token, browser, service.clock.now())
    if used is not None:
        email = used[0]  # not logged in yet: the link, not the account, is the actor
        actions.record(service, "link:" + email, "device_link_used", email, address=address)
    return used
