"""Controls, settings, accounts, API tokens and the language switch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from antirelou.encoding import Encoding, Segmentation, gsm7_rewrite, segment
from antirelou.operations import OperationError, audit
from antirelou.service import Service
from antirelou.web import accounts, actions, credentials, overrides
from antirelou.web.accounts import Role
from antirelou.web.auth_tables import email_of
from antirelou.web.context import done, refused, show
from antirelou.web.credentials import Refusal
from antirelou.web.guard import Acting, Admin, Administering, Reader, Viewer, service_of
from antirelou.web.i18n import translator
from antirelou.web.insights import line_statuses
from antirelou.web.reads import reader
from antirelou.web.schemas import Clean, DbInt
from antirelou.web.sessions import (
    TOKEN_LIFETIME,
    issue_token,
    list_tokens,
    revoke_all_tokens,
    revoke_token,
)

router = APIRouter(prefix="/dashboard", include_in_schema=False)
Text = Annotated[Clean, Form()]


def _controls(service: Service) -> dict[str, Any]:
    with reader(service).connect() as conn:
        lines = line_statuses(service, conn)
    return {"lines": lines, "held": actions.held_replies(service)}


@router.get("/controls", response_class=HTMLResponse)
async def controls(request: Request, viewer: Reader) -> HTMLResponse:
    data = await run_in_threadpool(_controls, service_of(request))
    return await show(request, viewer, "controls.html", **data)


@dataclass(frozen=True)
class ReplyView:
    number: str
    reply: str
    m: Segmentation
    rewrite: str
    overridden: bool


def _settings(request: Request) -> dict[str, Any]:
    service = service_of(request)
    live: overrides.LiveSettings = request.app.state.dashboard.live
    views = []
    for line in service.settings.lines:
        measured = segment(line.reply)
        rewrite = gsm7_rewrite(line.reply) if measured.encoding is Encoding.UCS2 else ""
        base = live.base.line(line.number)
        changed = base is not None and base.reply != line.reply
        views.append(ReplyView(line.number, line.reply, measured, rewrite, changed))
    return {
        "lines": views,
        "price": service.settings.pricing.outbound_segment,
        "budget": service.settings.budget,
        "users": accounts.list_users(service),
    }


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request, viewer: Admin) -> HTMLResponse:
    data = await run_in_threadpool(_settings, request)
    return await show(request, viewer, "settings.html", **data)


async def _run(request: Request, viewer: Viewer, action: Any, flash: str) -> Response:
    try:
        await run_in_threadpool(action)
    except OperationError as exc:
        return await refused(request, viewer, exc)
    return done("/dashboard/settings", flash)


@router.post("/lines/{number}/reply")
async def edit_reply(
    request: Request, viewer: Administering, number: Clean, text: Text
) -> Response:
    live = request.app.state.dashboard.live
    act = lambda: actions.edit_reply(live, number, text, viewer.actor)  # noqa: E731
    return await _run(request, viewer, act, "reply_saved")


@router.post("/lines/{number}/reply/reset")
async def reset_reply(request: Request, viewer: Administering, number: Clean) -> Response:
    live = request.app.state.dashboard.live
    act = lambda: actions.reset_reply(live, number, viewer.actor)  # noqa: E731
    return await _run(request, viewer, act, "reply_saved")


def _euros(value: str) -> float:
    try:
        return float(value.replace(",", "."))
    except ValueError:
        raise OperationError(f"not an amount: {value!r}") from None


@router.post("/caps")
async def caps(request: Request, viewer: Administering, daily_cap: Text, total: Text) -> Response:
    live = request.app.state.dashboard.live
    act = lambda: actions.edit_caps(live, _euros(daily_cap), _euros(total), viewer.actor)  # noqa: E731
    return await _run(request, viewer, act, "caps_saved")


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise OperationError(f"no role {value!r}") from None


@router.post("/users")
async def add_user(
    request: Request, viewer: Administering, email: Text, role: Text, password: Text
) -> Response:
    service = service_of(request)
    act = lambda: accounts.create_user(service, email, password, _role(role), viewer.actor)  # noqa: E731
    return await _run(request, viewer, act, "user_saved")


@router.post("/users/{user_id}")
async def change_user(
    request: Request, viewer: Administering, user_id: DbInt, role: Text, disabled: Text = "0"
) -> Response:
    service = service_of(request)

    def act() -> None:
        if user_id == viewer.user.id and (disabled == "1" or role != Role.ADMIN):
            raise OperationError("you cannot demote or disable your own account")
        accounts.change_user(
            service, user_id, viewer.actor, role=_role(role), disabled=disabled == "1"
        )

    return await _run(request, viewer, act, "user_saved")


SETTING_A_PASSWORD = credentials.Reconfirm(
    Refusal("Wrong password or code: the password was not set.", 403), "user_password_refused"
)
OWN_PASSWORD = Refusal("Change your own password on your account page.", 400)


def _set_password(
    service: Service, viewer: Viewer, user_id: int, new: str, proof: credentials.Proof
) -> Refusal | None:
    """An admin sets a new password for another account (a forgotten one), once she has
    proved again who she is: a stolen admin session must not take over other accounts.
    The account's sessions end; the change is audited and alerted (alerts.py)."""
    if user_id == viewer.user.id:  # her own needs her current password: /dashboard/account
        return OWN_PASSWORD
    try:
        accounts.check_password(new)  # before a wrong proof is counted
        with service.engine.connect() as conn:
            email_of(conn, user_id)
    except OperationError as exc:
        return Refusal(str(exc), 400)
    refusal = credentials.reconfirm(service, viewer, proof, SETTING_A_PASSWORD)
    if refusal is not None:
        return refusal
    accounts.change_user(service, user_id, viewer.actor, password=new)
    return None


@router.post("/users/{user_id}/password", response_class=HTMLResponse)
async def set_password(
    request: Request,
    viewer: Administering,
    user_id: DbInt,
    new: Text = "",
    password: Text = "",
    code: Text = "",
) -> Response:
    service = service_of(request)
    proof = credentials.proof_of(request, password, code)
    refusal = await run_in_threadpool(_set_password, service, viewer, user_id, new, proof)
    if refusal is None:
        return done("/dashboard/settings", "password_set")
    data = await run_in_threadpool(_settings, request)
    error = translator(viewer.user.language)(refusal.message)
    return await show(request, viewer, "settings.html", refusal.status, error=error, **data)


def _revoke_all(service: Service, viewer: Viewer, user_id: int) -> None:
    """An admin stops every token of an account (hers or another's) at once, audited."""
    now = service.clock.now()
    with service.engine.begin() as conn:
        email = email_of(conn, user_id)
        count = revoke_all_tokens(conn, user_id, now)
        audit(conn, viewer.actor, "token_revoke_all", email, now, count=count)


@router.post("/users/{user_id}/tokens/revoke")
async def revoke_all(request: Request, viewer: Administering, user_id: DbInt) -> Response:
    act = lambda: _revoke_all(service_of(request), viewer, user_id)  # noqa: E731
    return await _run(request, viewer, act, "tokens_revoked")


def _tokens(service: Service, user_id: int) -> Any:
    with reader(service).connect() as conn:
        return list_tokens(conn, user_id)


@router.get("/tokens", response_class=HTMLResponse)
async def tokens(request: Request, viewer: Reader) -> HTMLResponse:
    rows = await run_in_threadpool(_tokens, service_of(request), viewer.user.id)
    return await show(request, viewer, "tokens.html", tokens=rows, new_token=None, error=None)


MAKING_A_TOKEN = credentials.Reconfirm(
    Refusal("Wrong password or code: no token was made.", 403), "token_create_refused"
)


@dataclass(frozen=True)
class TokenAsked:
    name: str
    expires: str  # "90d", "never"...
    role: str  # "" for the account's own


def _new_token(
    service: Service, viewer: Viewer, asked: TokenAsked, proof: credentials.Proof
) -> str | Refusal:
    """A token, once the operator has proved again who they are (see credentials.py)."""
    refusal = credentials.reconfirm(service, viewer, proof, MAKING_A_TOKEN)
    if refusal is not None:
        return refusal
    name = asked.name.strip() or "api"
    try:
        with service.engine.begin() as conn:
            token, _expires_at = issue_token(
                conn, viewer.user, viewer.actor, service.clock.now(),
                name=name, expires=asked.expires, role=asked.role,
            )  # fmt: skip
    except OperationError as exc:
        return Refusal(str(exc), 400)
    return token


@router.post("/tokens", response_class=HTMLResponse)
async def new_token(
    request: Request,
    viewer: Acting,
    name: Text = "",
    expires: Text = TOKEN_LIFETIME,
    role: Text = "",
    password: Text = "",
    code: Text = "",
) -> HTMLResponse:
    """The token is shown once, in this response; only its digest is stored."""
    service = service_of(request)
    proof = credentials.proof_of(request, password, code)
    asked = TokenAsked(name, expires, role)
    made = await run_in_threadpool(_new_token, service, viewer, asked, proof)
    rows = await run_in_threadpool(_tokens, service, viewer.user.id)
    if isinstance(made, Refusal):
        error = translator(viewer.user.language)(made.message)
        return await show(
            request, viewer, "tokens.html", made.status, tokens=rows, new_token=None, error=error
        )
    return await show(request, viewer, "tokens.html", tokens=rows, new_token=made)


def _revoke(service: Service, viewer: Viewer, token_id: int) -> None:
    now = service.clock.now()
    with service.engine.begin() as conn:
        if not revoke_token(conn, token_id, viewer.user.id, now):
            raise OperationError(f"no active token {token_id}")
    actions.record(service, viewer.actor, "token_revoke", viewer.user.email, token=token_id)


@router.post("/tokens/{token_id}/revoke")
async def revoke(request: Request, viewer: Acting, token_id: DbInt) -> Response:
    try:
        await run_in_threadpool(_revoke, service_of(request), viewer, token_id)
    except OperationError as exc:
        return await refused(request, viewer, exc)
    return done("/dashboard/tokens", "token_revoked")


@router.post("/language")
async def language(request: Request, viewer: Acting, language: Text = "fr") -> Response:
    try:
        await run_in_threadpool(
            accounts.set_language, service_of(request), viewer.user.id, language
        )
    except OperationError as exc:
        return await refused(request, viewer, exc)
    back = request.headers.get("referer", "")
    path = "/" + back.split("/", 3)[3] if back.count("/") >= 3 else "/dashboard"
    return RedirectResponse(path if path.startswith("/dashboard") else "/dashboard", 303)
