"""`antirelou users ...` and `antirelou tokens ...`: accounts made from a terminal.

The first admin can only be made here (the dashboard has no sign-up page). Registered in
antirelou.cli with `main.add_command(users)` and `main.add_command(tokens)`; the service is
opened lazily so importing this module from cli.py creates no import cycle.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from antirelou.clitypes import ROW_ID
from antirelou.operations import OperationError

if TYPE_CHECKING:
    from antirelou.web.sessions import TokenRow

F = TypeVar("F", bound=Callable[..., Any])
ROLES = click.Choice(["admin", "moderator", "viewer"])


def _config(func: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="TOML configuration file (default: $ANTIRELOU_CONFIG, else built-in defaults).",
    )(func)


@contextmanager
def _service(config_path: Path | None) -> Iterator[Any]:
    """The service, disposed at the end (no pooled connection left open)."""
    from antirelou.cli import open_service, settings_from

    service = open_service(settings_from(config_path))
    try:
        yield service
    finally:
        service.dispose()


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def _fail(exc: Exception) -> NoReturn:
    click.echo(f"antirelou: {exc}", err=True)
    sys.exit(1)


@click.group()
def users() -> None:
    """Dashboard accounts: admin, moderator or viewer."""


@users.command("add")
@_config
@click.argument("email")
@click.option("--role", type=ROLES, required=True, help="What the account may do.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_add(config_path: Path | None, email: str, role: str, password_stdin: bool) -> None:
    """Create an account (the password is asked twice, or read from stdin)."""
    from antirelou.web.accounts import Role, create_user

    password = _password(password_stdin)
    with _service(config_path) as service:
        try:
            create_user(service, email, password, Role(role), _actor())
        except OperationError as exc:
            _fail(exc)
        needs_factor = role in service.settings.web.second_factor_roles
    click.echo(f"{email} added as {role}")
    if needs_factor:
        click.echo(f"it cannot log in before: antirelou users totp enable {email}")
    elif role != "viewer":  # she can pause the line and see the senders' numbers
        click.echo(f"give it a second factor: antirelou users totp enable {email}")


@users.command("list")
@_config
def users_list(config_path: Path | None) -> None:
    """Every account with its role."""
    from antirelou.web import totp
    from antirelou.web.accounts import list_users

    with _service(config_path) as service:
        left = totp.recovery_codes_left(service)
        for user in list_users(service):
            state = " (disabled)" if user.disabled else ""
            factor = f" +code ({left.get(user.id, 0)} recovery codes left)" if user.totp else ""
            click.echo(f"{user.email} {user.role.value}{factor}{state}")


@users.command("logins")
@_config
@click.argument("email")
def users_logins(config_path: Path | None, email: str) -> None:
    """The account's last ten dashboard logins, and which came from a new network."""
    from antirelou.web import places
    from antirelou.web.accounts import find_user

    with _service(config_path) as service, service.engine.connect() as conn:
        user = find_user(conn, email)
        if user is None:
            _fail(OperationError(f"no account {email}"))
        logins = places.recent_logins(conn, user)
        browsers = places.trusted_browsers(conn, user)
    for login in logins:
        news = "  new network: alert sent" if login.new_network else ""
        click.echo(f"{login.at.isoformat(timespec='seconds')}  {login.address}{news}")
    click.echo(f"{len(logins)} logins shown; {browsers} browsers trusted for {email}")


@users.command("disable")
@_config
@click.argument("email")
def users_disable(config_path: Path | None, email: str) -> None:
    """Disable an account and end its sessions at once."""
    _set_disabled(config_path, email, True)
    click.echo(f"{email} disabled")


@users.command("enable")
@_config
@click.argument("email")
def users_enable(config_path: Path | None, email: str) -> None:
    """Let a disabled account log in again."""
    _set_disabled(config_path, email, False)
    click.echo(f"{email} enabled")


def _set_disabled(config_path: Path | None, email: str, disabled: bool) -> None:
    from antirelou.web.accounts import change_user

    with _service(config_path) as service:
        change_user(service, _user_id(service, email), _actor(), disabled=disabled)


@users.command("logout")
@_config
@click.argument("email")
def users_logout(config_path: Path | None, email: str) -> None:
    """End every session of the account and trust none of its browsers any more (a lost
    or stolen laptop), without changing its password."""
    from antirelou.web.accounts import log_out_others

    with _service(config_path) as service:
        forgotten = log_out_others(service, _user_id(service, email), _actor())
    click.echo(f"{email}: every session closed; {forgotten} trusted browsers forgotten")


@users.command("trust-link")
@_config
@click.argument("email")
@click.option("--valid", default="15m", show_default=True, help="How long the link works.")
def users_trust_link(config_path: Path | None, email: str, valid: str) -> None:
    """A single-use link that makes the browser it is opened in trusted for the account:
    for an operator on a new browser while a raid keeps her account locked out. She still
    logs in with her password (and code)."""
    from antirelou.durations import parse_duration
    from antirelou.web import devices

    try:
        lasts = parse_duration(valid, longest=timedelta(days=1))
        if lasts <= timedelta(0):
            raise ValueError("a link must work for some time, e.g. 15m")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--valid") from None
    with _service(config_path) as service:
        try:
            url, until = devices.issue_link(service, email, _actor(), lasts)
        except OperationError as exc:
            _fail(exc)
    click.echo(f"Open this link once, before {until:%H:%M} UTC, in the browser to trust:")
    click.echo(url)


@users.command("password")
@_config
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_password(config_path: Path | None, email: str, password_stdin: bool) -> None:
    """Set a new password (a forgotten one, or one that leaked); ends the account's
    sessions at once. Operators change their own from the dashboard's "My account"."""
    from antirelou.web.accounts import change_user

    password = _password(password_stdin)
    with _service(config_path) as service:
        try:
            change_user(service, _user_id(service, email), _actor(), password=password)
        except OperationError as exc:
            _fail(exc)
    click.echo(f"{email}: new password set; its sessions are closed")


def _user_id(service: Any, email: str) -> int:
    """The account's id; exits with a message when there is none."""
    from antirelou.web.accounts import find_user

    with service.engine.connect() as conn:
        user = find_user(conn, email)
    if user is None:
        _fail(OperationError(f"no account {email}"))
    return user.id


@users.group("totp")
def users_totp() -> None:
    """A second factor: a code from an authenticator app, asked at login."""


@users_totp.command("enable")
@_config
@click.argument("email")
def totp_enable(config_path: Path | None, email: str) -> None:
    """Show a QR code to scan with the account's authenticator app, then ask for the code
    it shows: the second factor is on only once that code is right."""
    import segno

    from antirelou.web import totp

    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, email)
    with _service(config_path) as service:
        user_id = _user_id(service, email)
        click.echo("Scan this with the authenticator app (Aegis, FreeOTP, ...):\n")
        segno.make(uri, error="m").terminal(compact=True)
        click.echo(f"\nor type this key into it: {secret}\n")
        code = str(click.prompt("Code shown by the app"))
        try:
            codes = totp.enable(service, user_id, secret, code, _actor())
        except OperationError as exc:
            _fail(exc)
    click.echo(f"{email} now needs a code from the app at login")
    _show_recovery_codes(codes)


def _show_recovery_codes(codes: list[str]) -> None:
    click.echo("\nRecovery codes, shown only now: each logs in once in place of the app's code")
    click.echo("if the phone is lost. Keep them on paper or in a password manager.\n")
    for code in codes:
        click.echo(f"    {code}")


@users_totp.command("codes")
@_config
@click.argument("email")
def totp_codes(config_path: Path | None, email: str) -> None:
    """A new set of recovery codes for an account with a second factor (the old set stops
    working)."""
    from antirelou.web import totp

    with _service(config_path) as service:
        try:
            codes = totp.renew_recovery_codes(service, _user_id(service, email), _actor())
        except OperationError as exc:
            _fail(exc)
    _show_recovery_codes(codes)


@users_totp.command("disable")
@_config
@click.argument("email")
def totp_disable(config_path: Path | None, email: str) -> None:
    """Remove the account's second factor (a lost phone: enable it again afterwards)."""
    from antirelou.web import totp
    from antirelou.web.accounts import find_user, lacks_second_factor

    with _service(config_path) as service:
        totp.disable(service, _user_id(service, email), _actor())
        with service.engine.connect() as conn:
            user = find_user(conn, email)
        locked_out = user is not None and lacks_second_factor(service, user)
    if locked_out:  # [web] second_factor_roles: the password alone no longer opens it
        click.echo(f"{email} cannot log in until: antirelou users totp enable {email}")
    else:
        click.echo(f"{email} logs in with the password alone")


@click.group()
def tokens() -> None:
    """API tokens for scripts (the JSON API under /api/)."""


@tokens.command("create")
@_config
@click.argument("email")
@click.option("--name", default="cli", help="What the token is for.")
@click.option(
    "--expires",
    default="90d",
    show_default=True,
    help='How long it works: "30d", "12w", "365d"... or "never" (until revoked).',
)
@click.option(
    "--role",
    type=ROLES,
    default=None,
    help="Act with at most this role (viewer: read only, numbers masked); default: the account's.",
)
def tokens_create(
    config_path: Path | None, email: str, name: str, expires: str, role: str | None
) -> None:
    """Print a new API token for EMAIL's account; it acts with that account's role."""
    from antirelou.web.accounts import find_user
    from antirelou.web.sessions import issue_token

    with _service(config_path) as service, service.engine.begin() as conn:
        user = find_user(conn, email)
        if user is None or user.disabled:
            _fail(OperationError(f"no active account {email}"))
        try:
            token, expires_at = issue_token(
                conn, user, _actor(), service.clock.now(),
                name=name, expires=expires, role=role or "",
            )  # fmt: skip
        except OperationError as exc:
            _fail(exc)
    click.echo(token)
    until = f"until {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "until revoked"
    click.echo(f"it works {until}", err=True)  # stdout holds the token alone, for scripts


@tokens.command("list")
@_config
@click.option("--email", default=None, help="Only this account's tokens.")
def tokens_list(config_path: Path | None, email: str | None) -> None:
    """Every API token (never the token itself: only its digest is kept)."""
    from antirelou.web.sessions import list_tokens

    with _service(config_path) as service:
        user_id = None if email is None else _user_id(service, email)
        with service.engine.connect() as conn:
            rows = list_tokens(conn, user_id)
    for token in rows:
        click.echo(f"{token.id} {token.owner} {token.name!r} {_token_state(token)}")


def _token_state(token: TokenRow) -> str:
    role = f"as {token.role}, " if token.role else ""
    used = f"last used {token.last_used_at:%Y-%m-%d}" if token.last_used_at else "never used"
    if token.revoked_at is not None:
        return f"{role}revoked {token.revoked_at:%Y-%m-%d}"
    until = f"expires {token.expires_at:%Y-%m-%d}" if token.expires_at else "until revoked"
    return f"{role}{until}, {used}"


@tokens.command("revoke")
@_config
@click.argument("token_id", type=ROW_ID)
def tokens_revoke(config_path: Path | None, token_id: int) -> None:
    """Revoke token TOKEN_ID (see `tokens list`), whoever's it is: it stops at once."""
    from antirelou.web.actions import record
    from antirelou.web.sessions import revoke_token

    with _service(config_path) as service:
        with service.engine.begin() as conn:
            revoked = revoke_token(conn, token_id, None, service.clock.now())
        if not revoked:
            _fail(OperationError(f"no active token {token_id}"))
        record(service, _actor(), "token_revoke", None, token=token_id)
    click.echo(f"token {token_id} revoked")
