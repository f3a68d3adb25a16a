"""`antirelou check`: is this instance ready for its number to be handed out?

A configuration that is unsafe does not even load (settings.insecure_problems). This looks
at what loads but would hurt on the first raid night: nobody hears of an incident, nobody
can log in to pause the line, a second factor missing where a raid would try passwords, a
pot already spent, a line still on the sandbox or paused. And it prints the addresses to
paste into each provider's console, from `public_url`, so they are not typed by hand.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Connection, select

from antirelou import balances, budget, killswitch, migrate, models
from antirelou.dbfiles import sqlite_path
from antirelou.findings import Finding, Level, report
from antirelou.money import format_eur, to_micros
from antirelou.operations import BACKUP_ACTION
from antirelou.providers import preflight
from antirelou.restore import replaced_copies
from antirelou.service import Service
from antirelou.settings import Settings

__all__ = ["WEBHOOKS", "Finding", "Level", "findings", "report"]

BACKUP_AGE = timedelta(days=8)  # a weekly backup, and a day's slack, is still fresh
REPLACED_COPY_AGE = timedelta(days=7)  # long enough to be sure of a restore

# What to paste where, per provider (docs/providers/): (what the console calls it, path).
WEBHOOKS = {
    "twilio": [
        ("Messaging, 'A message comes in' (POST)", preflight.TWILIO_SMS),
        ("Voice, 'A call comes in' (POST)", preflight.TWILIO_VOICE),
    ],
    "vonage": [
        ("Inbound SMS webhooks (POST)", preflight.VONAGE_INBOUND),
        ("Delivery receipts (POST)", preflight.VONAGE_STATUS),
    ],
    "plivo": [("the application's Message URL (POST)", preflight.PLIVO_SMS)],
    "android": [
        ("webhook for sms:received", preflight.ANDROID_SMS),
        ("webhooks for sms:sent, sms:delivered, sms:failed", preflight.ANDROID_STATUS),
    ],
}


def findings(service: Service, providers: bool = False) -> list[Finding]:
    """Everything `antirelou check` reports, in the order it prints them; `providers` asks
    each provider too (read-only requests, see providers/preflight.py)."""
    settings = service.settings
    with service.engine.connect() as conn:
        found = [_schema(service)]
        found += _accounts(conn, service)
        pot_left = _pot_left(conn, service)
        found += _money(service, pot_left)
        found += _lines(conn, settings)
        found += _backups(conn, service)
    found += _replaced_copies(service)
    found += _alerts(settings) + _evidence(settings) + _public_url(settings)
    return found + (_providers(settings, pot_left) if providers else _not_asked(settings))


def _schema(service: Service) -> Finding:
    if migrate.is_up_to_date(service.engine):
        return Finding(Level.OK, "database: reachable, schema up to date")
    return Finding(Level.FAIL, "database: schema out of date: run `antirelou db upgrade`")


def _accounts(conn: Connection, service: Service) -> list[Finding]:
    from antirelou.web.accounts import Role, list_users
    from antirelou.web.places import trusted_browsers

    settings = service.settings
    active = [a for a in list_users(service) if not a.disabled]
    admins = [a for a in active if a.role == Role.ADMIN]
    if not admins:
        add = "`antirelou users add EMAIL --role admin`"
        return [Finding(Level.WARN, f"accounts: no admin can log in to the dashboard: {add}")]
    found = [Finding(Level.OK, f"accounts: {len(active)} active, {len(admins)} admins")]
    acting = [a for a in active if a.role != Role.VIEWER]
    if unguarded := [a.email for a in acting if not a.totp]:
        found.append(
            Finding(
                Level.WARN,
                "accounts without a second factor, yet able to pause the line and see "
                f"numbers: {', '.join(unguarded)} (`antirelou users totp enable EMAIL`)",
            )
        )
    if missing := {"moderator", "admin"} - set(settings.web.second_factor_roles):
        roles = " and ".join(sorted(missing))
        found.append(
            Finding(
                Level.WARN,
                f"[web] second_factor_roles leaves out {roles}: an account added later "
                'can skip the second factor (second_factor_roles = ["moderator", "admin"])',
            )
        )
    if strangers := [a.email for a in acting if trusted_browsers(conn, a) == 0]:
        found.append(
            Finding(
                Level.WARN,
                f"never logged in to the dashboard: {', '.join(strangers)}. Log in once, "
                "before, from the browser to use during a raid: a raid that fails logins "
                "with your address locks out only browsers that never did",
            )
        )
    return found


def _pot_left(conn: Connection, service: Service) -> int:
    """Micro-euros left in the pot."""
    day = service.local_day(service.settings.lines[0], service.clock.now())
    snap = budget.snapshot(conn, day, service.caps)
    return snap.total_cap - snap.total_used


def _money(service: Service, left: int) -> list[Finding]:
    caps = service.caps
    if caps.daily <= 0:
        return [Finding(Level.WARN, "money: the daily cap is 0: no reply will be sent")]
    if left <= 0:
        return [
            Finding(
                Level.FAIL,
                f"money: the pot is spent ({format_eur(left)} left): no reply will be sent;"
                " `antirelou money donate EUROS` records what came in",
            )
        ]
    text = f"money: {format_eur(left)} left in the pot, daily cap {format_eur(caps.daily)}"
    return [Finding(Level.OK if left >= caps.daily else Level.WARN, text)]


def _lines(conn: Connection, settings: Settings) -> list[Finding]:
    found = []
    for line in settings.lines:
        where = f"line {line.number}"
        if killswitch.line_paused(conn, line.number):
            found.append(Finding(Level.WARN, f"{where}: paused: `antirelou lines resume`"))
        if line.provider == "sandbox":
            found.append(Finding(Level.WARN, f"{where}: on the sandbox: no real SMS"))
            continue
        found.append(Finding(Level.OK, f"{where}: via {line.provider}"))
        for what, path in WEBHOOKS[line.provider]:
            found.append(Finding(Level.INFO, f"{where}: {what}: {settings.public_base}{path}"))
    return found


def _backups(conn: Connection, service: Service) -> list[Finding]:
    """How old the newest `antirelou db backup` is (a pg_dump run by hand leaves no trace
    here)."""
    a = models.audit_log
    last = conn.execute(
        select(a.c.at, a.c.target)
        .where(a.c.action == BACKUP_ACTION)
        .order_by(a.c.at.desc(), a.c.id.desc())
        .limit(1)
    ).first()
    if last is None:
        how = "`antirelou db backup DEST` (docs/deployment.md, Backups)"
        return [Finding(Level.WARN, f"backups: none made yet: {how}")]
    age = service.clock.now() - last.at
    text = f"backups: the last one was made {_ago(age)} ago, to {last.target}"
    return [Finding(Level.OK if age <= BACKUP_AGE else Level.WARN, text)]


def _replaced_copies(service: Service) -> list[Finding]:
    """The databases `db restore` replaced, kept beside the live one (restore._keep): they
    hold numbers and texts that retention will never erase there, so they are named until
    someone deletes them, and warned about once a week old."""
    live = sqlite_path(service.settings.database_url)
    if live is None:
        return []
    stamps = replaced_copies(live)
    if not stamps:
        return []
    oldest, path = stamps[0]
    age = service.clock.now() - oldest
    text = (
        f"restore: {len(stamps)} replaced database(s) kept beside this one, the oldest "
        f"{_ago(age)} old ({path}): retention does not erase what they hold; delete them "
        "once the restored database is known good"
    )
    return [Finding(Level.WARN if age > REPLACED_COPY_AGE else Level.INFO, text)]


def _ago(age: timedelta) -> str:
    if age < timedelta(hours=2):
        return f"{max(0, int(age / timedelta(minutes=1)))} minutes"
    if age < timedelta(days=2):
        return f"{int(age / timedelta(hours=1))} hours"
    return f"{age.days} days"


def _providers(settings: Settings, pot_left: int) -> list[Finding]:
    found = _reachable(settings)
    for asked in preflight.ask(settings):
        found += asked.findings
        balance = asked.balance
        if balance is None:
            continue
        if balance.currency != settings.pricing.currency.upper():
            # No honest comparison with the pot, and no low-balance alert without a floor:
            # common (a Twilio account billed in USD, a pot in EUR), so it is said here.
            found += _no_floor(settings, asked.provider, balance.currency)
            continue
        if to_micros(balance.amount) < pot_left:
            found.append(
                Finding(
                    Level.WARN,
                    f"{asked.provider} holds {balance.amount:,.2f} {balance.currency}, less than "
                    f"the pot's {format_eur(pot_left)}: replies will stop at the provider "
                    "before the caps stop them; top the account up",
                )
            )
    return found


REACH_TIMEOUT = 10.0  # seconds; a provider waits about as long for a webhook's answer


def _reachable(settings: Settings) -> list[Finding]:
    """Whether public_url leads to this service from here: the DNS name, the certificate and
    the reverse proxy the providers go through, which no provider API can check for us."""
    real = _real_providers(settings)
    if not real:
        return []
    found = _healthz(settings)
    if found[0].level is Level.OK:
        _, inbound = WEBHOOKS[real[0]][0]  # each provider's first address takes the texts
        found += _webhook_reached(settings, inbound)
    return found


def _real_providers(settings: Settings) -> list[str]:
    """The providers the lines use, the sandbox (which no one calls) left out."""
    return [name for name in settings.lines_by_provider if name != "sandbox"]


def _healthz(settings: Settings) -> list[Finding]:
    url = f"{settings.public_base}/healthz"
    try:
        answer = httpx.get(url, timeout=REACH_TIMEOUT, follow_redirects=False)
    except httpx.HTTPError as exc:
        # WARN, not FAIL: some networks cannot reach their own public address from inside
        # (no hairpin NAT) while the providers can.
        text = (
            f"public_url: {url} cannot be reached from this machine ({_why(exc)}): is "
            "`antirelou serve` running behind it, with a valid certificate? (Some networks "
            "cannot reach their own public address from inside: then try from outside.)"
        )
        return [Finding(Level.WARN, text)]
    if answer.is_redirect:
        where = answer.headers.get("location", "elsewhere")
        text = f"public_url: {url} redirects to {where}: providers do not follow a redirect"
        return [Finding(Level.FAIL, f"{text}; set public_url to the address it leads to")]
    if answer.status_code != 200 or answer.text != "ok":
        text = (
            f"public_url: {url} answered HTTP {answer.status_code}, not antirelou's 'ok': "
            "does the reverse proxy pass /webhooks/ and /healthz on to antirelou?"
        )
        return [Finding(Level.FAIL, text)]
    return [Finding(Level.OK, f"public_url: {url} answers (DNS, certificate, proxy)")]


def _webhook_reached(settings: Settings, path: str) -> list[Finding]:
    """An unsigned POST to the inbound webhook, as a provider's would come (the method and
    the path a proxy may treat apart from /healthz): antirelou refuses it with 403 before
    it touches the database, naming the missing signature."""
    url = f"{settings.public_base}{path}"
    form = {"content-type": "application/x-www-form-urlencoded"}
    try:
        answer = httpx.post(url, content=b"", headers=form, timeout=REACH_TIMEOUT)
    except httpx.HTTPError as exc:
        return [_webhook_not_reached(url, f"failed ({_why(exc)})")]
    if answer.status_code == 403 and "signature" in _detail(answer).lower():
        text = f"public_url: a POST to {url} reaches antirelou (refused unsigned, as it must be)"
        return [Finding(Level.OK, text)]
    return [_webhook_not_reached(url, f"answered HTTP {answer.status_code}")]


def _webhook_not_reached(url: str, what: str) -> Finding:
    text = (
        f"public_url: a POST to {url} {what}, not antirelou's refusal of an unsigned text: "
        "does the reverse proxy pass POST requests to /webhooks/ on to antirelou?"
    )
    return Finding(Level.FAIL, text)


def _detail(answer: httpx.Response) -> str:
    """The `detail` of a JSON error answer ('' for anything else)."""
    try:
        payload = answer.json()
    except ValueError:
        return ""
    return str(payload.get("detail", "")) if isinstance(payload, dict) else ""


def _why(exc: httpx.HTTPError) -> str:
    return f"{type(exc).__name__}: {exc}"[:200] if str(exc) else type(exc).__name__


def _no_floor(settings: Settings, provider: str, currency: str) -> list[Finding]:
    if balances.low_water(settings, currency) is not None:
        return []
    text = (
        f"{provider} bills in {currency}, the pot is in {settings.pricing.currency.upper()}: "
        "no alert will say its balance runs low; set [budget] provider_balance_floor "
        f"(in {currency})"
    )
    return [Finding(Level.WARN, text)]


def _not_asked(settings: Settings) -> list[Finding]:
    if not _real_providers(settings):
        return []
    text = (
        "providers: not asked; `antirelou check --providers` asks them whether the "
        "credentials, the numbers and the webhook addresses are right (read-only, free)"
    )
    return [Finding(Level.INFO, text)]


def _alerts(settings: Settings) -> list[Finding]:
    alerts = settings.alerts
    channels = []
    if alerts.webhook_url:
        channels.append(f"webhook to {urlsplit(alerts.webhook_url).netloc}")
    if alerts.smtp_host and alerts.smtp_to:
        channels.append(f"mail to {', '.join(alerts.smtp_to)}")
    if channels:
        return [Finding(Level.OK, f"alerts: {'; '.join(channels)}")]
    return [
        Finding(
            Level.WARN,
            "alerts: none configured: an incident or a cap passed tells nobody "
            "([alerts] webhook_url, or smtp_host and smtp_to)",
        )
    ]


def _evidence(settings: Settings) -> list[Finding]:
    evidence = settings.evidence
    found = []
    if Path(evidence.key_path).exists():
        text = f"evidence: signing key {evidence.key_path} (back it up apart from the database)"
        found.append(Finding(Level.OK, text))
    else:
        text = f"evidence: signing key not made yet (at the first checkpoint): {evidence.key_path}"
        found.append(Finding(Level.INFO, text + "; back it up apart from the database then"))
    if not evidence.tsa_url:
        found.append(
            Finding(
                Level.INFO,
                "evidence: no timestamping authority ([evidence] tsa_url): checkpoints are "
                "signed by this server alone",
            )
        )
    return found


def _public_url(settings: Settings) -> list[Finding]:
    host = urlsplit(settings.public_url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        text = f"public_url is {settings.public_url}: fine to try, not for a published number"
        return [Finding(Level.WARN, text)]
    return [Finding(Level.OK, f"public_url: {settings.public_url}")]
