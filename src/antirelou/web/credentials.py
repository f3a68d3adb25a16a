"""An operator's password (and authenticator code) checked, with failures rate limited.

Asked at login, and asked again before an action whose result outlives the session: an
API token keeps working after the session that made it is gone, so a stolen session
cookie must not be enough to mint one (OWASP ASVS V3.7, "re-authentication before
sensitive operations"). Failures count against the same per-account and per-address
limits as failed logins, so a hijacked session cannot be used to guess the password.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

from antirelou.service import Service
from antirelou.web import actions, devices, ratelimit, totp
from antirelou.web.accounts import User, authenticate
from antirelou.web.limits import CheckGate
from antirelou.web.state import AppState

if TYPE_CHECKING:
    from antirelou.web.guard import Viewer


@dataclass(frozen=True)
class Refusal:
    message: str  # English; translated for the form
    status: int


LIMITED = Refusal("Too many failed attempts: wait 15 minutes.", 429)
WRONG = Refusal("Wrong email, password or code.", 401)
BUSY = Refusal(
    "Too many logins are being tried right now: wait a minute, or use a browser you "
    "logged in with before.",
    429,
)


def address_of(request: Request) -> str:
    """The client's address, as the login limits count it (the proxy's X-Forwarded-For
    from `[web] forwarded_allow_ips` only, applied by the server before we see it)."""
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True)
class Proof:
    """What an operator gives to prove who she is, and where from."""

    password: str
    code: str
    address: str  # address_of()
    device: str | None = None  # her browser's device cookie (devices.py)
    gate: CheckGate | None = None  # this process's, for untrusted browsers (None: no limit)


def proof_of(request: Request, password: str, code: str) -> Proof:
    """The proof a form carries: what was typed, and the browser it came from."""
    state = AppState.of(request)
    device = devices.token_of(request, state.service)
    return Proof(password, code, address_of(request), device, state.password_checks)


def check(service: Service, email: str, proof: Proof) -> User | Refusal:
    """The account these credentials open, or why not (each failure is counted: against
    the account and the address, or against the browser alone when it is trusted)."""
    now = service.clock.now()
    with service.engine.begin() as conn:
        device = devices.failure_key(conn, proof.device, email, now)
        if ratelimit.is_limited(conn, email, proof.address, now, device):
            return LIMITED
    if device is None and proof.gate is not None and not proof.gate.take():
        return BUSY
    with service.engine.begin() as conn:
        user = authenticate(conn, email, proof.password, proof.code, now, totp.box_of(service))
        if user is None:
            ratelimit.record_failure(conn, email, proof.address, now, device)
            return WRONG
        ratelimit.clear(conn, email, device)
    return user


@dataclass(frozen=True)
class Reconfirm:
    """What a form that asks for the password again says and audits when it is wrong."""

    wrong: Refusal  # said to the operator (the session is real: no account to hide)
    refused: str  # the audit action, say "token_create_refused"


def reconfirm(service: Service, viewer: Viewer, proof: Proof, asking: Reconfirm) -> Refusal | None:
    """None when the logged-in operator proved again who they are with `proof`; else
    LIMITED, BUSY or `asking.wrong`, the refusal audited."""
    proved = check(service, viewer.user.email, proof)
    if isinstance(proved, User) and proved.id == viewer.user.id:
        return None
    address = proof.address
    actions.record(service, viewer.actor, asking.refused, viewer.user.email, address=address)
    return proved if proved in (LIMITED, BUSY) else asking.wrong
