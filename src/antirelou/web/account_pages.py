"""My account: who I am, my second factor, and a new password.

A new password needs the current one (and a fresh code when the account has a second
factor): a stolen session cookie alone must not be able to lock the operator out. Failures
count against the login limits (credentials.py). The change ends every session of the
account, the stolen one included, then opens a new one for the browser that made it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from antirelou.operations import OperationError
from antirelou.service import Service
from antirelou.web import credentials, devices, places
from antirelou.web.accounts import change_user, check_password, log_out_others
from antirelou.web.context import done, show
from antirelou.web.credentials import Refusal
from antirelou.web.guard import Acting, Reader, Viewer, cookie_name, service_of
from antirelou.web.i18n import translator
from antirelou.web.login import set_session_cookie
from antirelou.web.reads import reader
from antirelou.web.schemas import Clean
from antirelou.web.sessions import open_session

router = APIRouter(prefix="/dashboard", include_in_schema=False)
Text = Annotated[Clean, Form()]

CHANGING_THE_PASSWORD = credentials.Reconfirm(
    Refusal("Wrong current password or code: the password was not changed.", 403),
    "password_change_refused",
)
LOGGING_OUT_OTHERS = credentials.Reconfirm(
    Refusal("Wrong password or code: no browser was logged out.", 403),
    "user_logout_others_refused",
)
NOT_THE_SAME = Refusal("The two new passwords differ: the password was not changed.", 400)


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request, viewer: Reader) -> HTMLResponse:
    return await _page(request, viewer)


async def _page(
    request: Request, viewer: Viewer, refusal: Refusal | None = None, form: str = "password"
) -> HTMLResponse:
    """The page; with `refusal`, its message shown above `form` ("password" or "others")."""
    seen = await run_in_threadpool(_logins, service_of(request), viewer)
    if refusal is None:
        return await show(request, viewer, "account.html", **seen)
    error = translator(viewer.user.language)(refusal.message)
    return await show(request, viewer, "account.html", refusal.status, errors={form: error}, **seen)


def _logins(service: Service, viewer: Viewer) -> dict[str, Any]:
    with reader(service).connect() as conn:
        logins = places.recent_logins(conn, viewer.user)
        return {"logins": logins, "browsers": places.trusted_browsers(conn, viewer.user)}


def _change(
    service: Service, viewer: Viewer, proof: credentials.Proof, new: str
) -> tuple[str, str | None] | Refusal:
    """The new session's token and this browser's new device token (None: it keeps its own,
    trusted for other accounts too) once the password is changed, or why it was not;
    `proof` is the current password, a code and the browser."""
    check_password(new)  # before anything is counted or changed
    refusal = credentials.reconfirm(service, viewer, proof, CHANGING_THE_PASSWORD)
    if refusal is not None:
        return refusal
    # Ends every session and forgets every trusted browser; this one is trusted again.
    change_user(service, viewer.user.id, viewer.actor, password=new)
    now = service.clock.now()
    with service.engine.begin() as conn:
        token, _csrf = open_session(conn, viewer.user.id, now)
        device = devices.trust_browser(conn, proof.device, viewer.user.id, now)
    return token, device


@router.post("/account/password", response_class=HTMLResponse)
async def new_password(
    request: Request,
    viewer: Acting,
    current: Text = "",
    code: Text = "",
    new: Text = "",
    repeat: Text = "",
) -> Response:
    service = service_of(request)
    proof = credentials.proof_of(request, current, code)
    changed: tuple[str, str | None] | Refusal = NOT_THE_SAME
    if new == repeat:
        try:
            changed = await run_in_threadpool(_change, service, viewer, proof, new)
        except OperationError as exc:  # a password too short
            changed = Refusal(str(exc), 400)
    if isinstance(changed, Refusal):
        return await _page(request, viewer, changed)
    response = done("/dashboard/account", "password_changed")
    session, device = changed
    set_session_cookie(response, service, session)
    if device is not None:
        devices.set_cookie(response, service, device)
    return response


@router.post("/account/others", response_class=HTMLResponse)
async def others(request: Request, viewer: Acting, current: Text = "", code: Text = "") -> Response:
    """Log out every other browser of the account and trust them no more (a lost laptop):
    the password again, so a stolen session cannot turn the holder's browsers out."""
    service = service_of(request)
    proof = credentials.proof_of(request, current, code)
    session = request.cookies.get(cookie_name(service))
    refusal = await run_in_threadpool(_log_out_others, service, viewer, proof, session)
    if refusal is not None:
        return await _page(request, viewer, refusal, form="others")
    return done("/dashboard/account", "others_logged_out")


def _log_out_others(
    service: Service, viewer: Viewer, proof: credentials.Proof, session: str | None
) -> Refusal | None:
    refusal = credentials.reconfirm(service, viewer, proof, LOGGING_OUT_OTHERS)
    if refusal is None:
        user = viewer.user.id
        log_out_others(service, user, viewer.actor, session=session, device=proof.device)
    return refusal
