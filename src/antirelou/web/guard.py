"""Who is asking: a session cookie (pages) or a bearer API token (scripts), and may they.

Every dashboard and API route depends on `need(role)` or `act(role)`; the crawl test checks
that no route outside the public list answers an anonymous request. `act` also checks the
CSRF token when the credential is a cookie, which a browser sends on its own: a bearer token
is never sent by a browser unasked, so it needs none.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from antirelou.phone import mask
from antirelou.providers.common import same_text
from antirelou.service import Service
from antirelou.web import cookies
from antirelou.web.accounts import Role, User, lacks_second_factor
from antirelou.web.reads import reader
from antirelou.web.sessions import session_of, token_user, touch_token
from antirelou.web.state import AppState

SECURE_COOKIE = "__Host-antirelou"  # https: no Domain, Path=/, Secure (cannot be planted)
PLAIN_COOKIE = "antirelou_session"  # plain http on a loopback address (development)
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
bearer = HTTPBearer(auto_error=False, description="an API token from `antirelou tokens create`")
# Declared through FastAPI so the OpenAPI document shows the bearer scheme on API routes.
bearer_dep = Security(bearer)


class NotLoggedIn(Exception):
    """No valid credential: pages redirect to the login form, the API answers 401."""


class Forbidden(Exception):
    """Logged in, but the role or the CSRF token does not allow this."""


@dataclass(frozen=True)
class Viewer:
    user: User
    csrf: str | None  # None for API tokens
    via: str  # "web" or "api"

    @property
    def actor(self) -> str:
        return f"{self.via}:{self.user.email}"

    def can(self, role: Role) -> bool:
        return self.user.role.includes(role)

    def show(self, number: str) -> str:
        """Phone numbers in full for moderators and admins, masked for viewers."""
        return number if self.can(Role.MODERATOR) else mask(number)


def cookie_name(service: Service) -> str:
    return SECURE_COOKIE if cookies.secure(service) else PLAIN_COOKIE


def service_of(request: Request) -> Service:
    return AppState.of(request).service


def _identify(request: Request, token: str | None) -> Viewer | None:
    service = service_of(request)
    viewer = _by_token(service, token) if token else _by_cookie(service, request)
    # Checked on every request, not only at login: sessions and API tokens opened before
    # [web] second_factor_roles named this role stop working at once.
    if viewer is None or lacks_second_factor(service, viewer.user):
        return None
    return viewer


def _by_cookie(service: Service, request: Request) -> Viewer | None:
    cookie = request.cookies.get(cookie_name(service))
    if not cookie:
        return None
    with reader(service).connect() as conn:
        info = session_of(conn, cookie, service.clock.now())
    return None if info is None else Viewer(info.user, info.csrf, "web")


def _by_token(service: Service, token: str) -> Viewer | None:
    now = service.clock.now()
    with reader(service).connect() as conn:
        use = token_user(conn, token, now)
    # The account's own role decides whether it needs a second factor first, whatever
    # the token's cap: a viewer token of an admin without one stops working too.
    if use is None or lacks_second_factor(service, use.user):
        return None
    if use.stale:
        with service.engine.begin() as conn:
            touch_token(conn, use.token_id, now)
    return Viewer(use.acting_user(), None, "api")


async def identify(request: Request) -> Viewer | None:
    """The logged-in operator, if any (cached on the request)."""
    if "viewer" not in request.scope:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        bearer_token = token.strip() if scheme.lower() == "bearer" else None
        request.scope["viewer"] = await run_in_threadpool(_identify, request, bearer_token)
    viewer = request.scope["viewer"]
    assert viewer is None or isinstance(viewer, Viewer)
    return viewer


async def _submitted_csrf(request: Request) -> str:
    sent = request.headers.get(CSRF_HEADER, "")
    if sent:
        return sent
    if request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD, "")
        return value if isinstance(value, str) else ""
    return ""


def need(role: Role) -> Callable[..., Awaitable[Viewer]]:
    """A dependency: the operator, who must have at least `role` (reading)."""

    async def dependency(
        request: Request, _credentials: HTTPAuthorizationCredentials | None = bearer_dep
    ) -> Viewer:
        viewer = await identify(request)
        if viewer is None:
            raise NotLoggedIn
        if not viewer.can(role):
            raise Forbidden(f"this needs the {role.value} role")
        return viewer

    return dependency


def act(role: Role) -> Callable[..., Awaitable[Viewer]]:
    """A dependency for state-changing requests: `need(role)` plus the CSRF check."""
    reader = need(role)

    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = bearer_dep
    ) -> Viewer:
        viewer = await reader(request, credentials)
        if viewer.csrf is not None:
            sent = await _submitted_csrf(request)
            if not sent or not same_text(sent, viewer.csrf):
                raise Forbidden("missing or wrong CSRF token")
        return viewer

    return dependency


# Route parameters: `viewer: Reader` to read, `viewer: Moderating` to act, and so on.
Reader = Annotated[Viewer, Depends(need(Role.VIEWER))]
Moderator = Annotated[Viewer, Depends(need(Role.MODERATOR))]
Admin = Annotated[Viewer, Depends(need(Role.ADMIN))]
Acting = Annotated[Viewer, Depends(act(Role.VIEWER))]
Moderating = Annotated[Viewer, Depends(act(Role.MODERATOR))]
Administering = Annotated[Viewer, Depends(act(Role.ADMIN))]
