"""Operator alerts: incidents opening and closing, spend crossing 50/80/100% of a cap, and
changes to the dashboard's accounts.

An alert is a row written in the transaction that noticed it (with a dedupe key, so the
80% alert of a day fires once however many processes cross it), and the worker delivers
it later by JSON webhook and e-mail. Delivery failures are retried and logged, and never
block texts or replies.
"""

from __future__ import annotations

import json
import logging
import smtplib
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import Connection, select, update

from antirelou import budget, models
from antirelou.dbutil import insert_or_ignore
from antirelou.floods import IncidentNews
from antirelou.money import to_euros
from antirelou.phone import mask_numbers
from antirelou.policy import BudgetSnapshot
from antirelou.service import Service
from antirelou.settings import AlertSettings

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 6


def enqueue(
    conn: Connection, kind: str, dedupe_key: str, payload: dict[str, Any], now: datetime
) -> None:
    conn.execute(
        insert_or_ignore(
            conn,
            models.alerts,
            ["dedupe_key"],
            dedupe_key=dedupe_key,
            kind=kind,
            payload=json.dumps({"kind": kind, **payload}, default=str, sort_keys=True),
            created_at=now,
            status="pending",
            attempts=0,
            next_at=now,
        )
    )


def incident_news(conn: Connection, service: Service, news: IncidentNews, now: datetime) -> None:
    for incident_id in news.opened:
        enqueue(
            conn,
            "incident_opened",
            f"incident:{incident_id}:opened",
            _incident(conn, incident_id),
            now,
        )
    for incident_id in news.closed:
        enqueue(
            conn,
            "incident_closed",
            f"incident:{incident_id}:closed",
            _incident(conn, incident_id),
            now,
        )


# Audited actions that change who can do what on the dashboard. A stolen admin session
# could use them to keep a way in (a new admin, a token, a second factor turned off): the
# collective hears of each one, and the account's holder too (AlertSettings).
ACCOUNT_ACTIONS = {
    "user_add": "account created",
    "user_change": "account changed",
    "user_totp_enable": "second factor turned on",
    "user_totp_disable": "second factor turned off",
    "user_recovery_codes_renewed": "recovery codes renewed",
    "user_recovery_code_used": "a recovery code was used to log in",
    "token_create": "API token created",
    "token_revoke_all": "every API token revoked",
    "login_new_network": "login from a network not used in the last 90 days",
    "user_logout_others": "other browsers logged out and no longer trusted",
    "device_link_create": "a link to trust a new browser was made on the server",
}


def account_change(
    conn: Connection,
    audit_id: int,
    actor: str,
    action: str,
    account: str | None,
    details: dict[str, Any],
    now: datetime,
) -> None:
    """Enqueue the alert for an audited account action (other actions are not alerts)."""
    if action not in ACCOUNT_ACTIONS:
        return
    payload = {"action": action, "account": account, "by": actor, "details": details}
    enqueue(conn, "account_change", f"audit:{audit_id}", payload, now)


def reply_failed(conn: Connection, line: str, error: str, code: str | None, now: datetime) -> None:
    """A reply will never go out (the provider refused it for good, or every attempt
    failed). Most such refusals are about us, not the man texting: credentials revoked, an
    account suspended or out of money, a number taken back; every reply after it fails the
    same way, silently. So the operators hear of it, once an hour per line at most (the
    alert carries the first error of the hour; the dashboard and logs have the others)."""
    # A provider's error may quote the recipient's number: alerts travel by mail and
    # webhook, so it is masked there as in the logs.
    payload = {"line": line, "error": mask_numbers(error), "code": code}
    _once_an_hour(conn, "reply_failed", line, payload, now)


def call_flood(conn: Connection, line: str, calls: int, now: datetime) -> None:
    """Calls are pouring in: `calls` reached the line in the last minute. Calls do not open
    an incident by themselves (voice_share bounds what they cost), so the operators hear of
    it, once an hour per line at most, and decide."""
    payload = {"line": line, "calls_last_minute": calls}
    _once_an_hour(conn, "call_flood", line, payload, now)


def _once_an_hour(
    conn: Connection, kind: str, line: str, payload: dict[str, Any], now: datetime
) -> None:
    """Enqueue an alert of `kind` for `line` unless one went out this (UTC) hour."""
    hour = now.astimezone(UTC).strftime("%Y-%m-%dT%H")
    enqueue(conn, kind, f"{kind}:{line}:{hour}", payload, now)


def _incident(conn: Connection, incident_id: int) -> dict[str, Any]:
    i = models.incidents
    row = conn.execute(select(i).where(i.c.id == incident_id)).one()
    return {
        "incident": incident_id,
        "line": row.line,
        "opened_at": row.opened_at.isoformat(),
        "closed_at": row.closed_at.isoformat() if row.closed_at else None,
        "opened_by": row.opened_by,
        "signals": json.loads(row.signals),
    }


def spend_thresholds(
    conn: Connection,
    service: Service,
    day: str,
    now: datetime,
    used: BudgetSnapshot | None = None,
) -> None:
    """Enqueue the 50/80/100% alerts a new reservation may have crossed (once each).
    `used`: what is committed after it, when the caller knows (else it is read)."""
    if used is None:
        used = budget.snapshot(conn, day, service.caps)
    marks = service.settings.alerts.spend_thresholds
    _crossed(conn, "daily_cap", f"day:{day}", used.day_used, used.day_cap, marks, now)
    _crossed(conn, "pot", "pot", used.total_used, used.total_cap, marks, now)


def _crossed(
    conn: Connection,
    what: str,
    key: str,
    used: int,
    cap: int,
    marks: tuple[float, ...],
    now: datetime,
) -> None:
    if cap <= 0:
        return
    for mark in marks:
        if used >= cap * mark:
            payload = {
                "what": what,
                "threshold": mark,
                "used_eur": to_euros(used),
                "cap_eur": to_euros(cap),
            }
            enqueue(conn, "spend_threshold", f"spend:{key}:{mark}", payload, now)


# --- delivery (worker) ---------------------------------------------------------------


def deliver_pending(service: Service, now: datetime, limit: int = 20) -> int:
    """Send due alerts; a failure is retried later with backoff and never raises."""
    a = models.alerts
    with service.engine.begin() as conn:
        rows = conn.execute(
            select(a.c.id, a.c.payload, a.c.attempts)
            .where(a.c.status == "pending", a.c.next_at <= now)
            .order_by(a.c.id)
            .limit(limit)
        ).all()
    for row in rows:
        error = _send(service.settings.alerts, json.loads(row.payload))
        _record(service, row.id, row.attempts + 1, error, now)
    return len(rows)


def _record(
    service: Service, alert_id: int, attempts: int, error: str | None, now: datetime
) -> None:
    a = models.alerts
    if error is None:
        values: dict[str, Any] = {"status": "sent", "attempts": attempts, "error": None}
    elif attempts >= MAX_ATTEMPTS:
        values = {"status": "failed", "attempts": attempts, "error": error}
    else:
        delay = timedelta(seconds=30 * 2**attempts)
        values = {"attempts": attempts, "error": error, "next_at": now + delay}
    with service.engine.begin() as conn:
        conn.execute(update(a).where(a.c.id == alert_id).values(**values))
    if error:
        log.warning("alert %s not delivered (attempt %s): %s", alert_id, attempts, error)


def _send(settings: AlertSettings, payload: dict[str, Any]) -> str | None:
    if payload.get("kind") == "account_change" and not _wanted(settings, payload):
        return None
    errors = []
    if settings.webhook_url:
        errors.append(_post_webhook(settings, payload))
    recipients = _mail_recipients(settings, payload)
    if settings.smtp_host and recipients:
        errors.append(_send_mail(settings, payload, recipients))
    failures = [e for e in errors if e]
    return "; ".join(failures) if failures else None


def _wanted(settings: AlertSettings, account_change: dict[str, Any]) -> bool:
    if account_change.get("action") == "login_new_network":
        return settings.account_changes and settings.new_network_logins
    return settings.account_changes


def _mail_recipients(settings: AlertSettings, payload: dict[str, Any]) -> list[str]:
    """`smtp_to`, and for an account change the account's own address: whoever holds it
    learns at once of a password or second factor changed behind her back."""
    recipients = list(settings.smtp_to)
    account = payload.get("account")
    holder = payload.get("kind") == "account_change" and settings.tell_account_holder
    if holder and isinstance(account, str) and "@" in account and account not in recipients:
        recipients.append(account)
    return recipients


def _post_webhook(settings: AlertSettings, payload: dict[str, Any]) -> str | None:
    try:
        response = httpx.post(settings.webhook_url, json=payload, timeout=settings.timeout)
    except httpx.HTTPError as exc:
        return f"webhook: {type(exc).__name__}"
    return None if response.is_success else f"webhook: HTTP {response.status_code}"


def _send_mail(
    settings: AlertSettings, payload: dict[str, Any], recipients: list[str]
) -> str | None:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(recipients)
    message["Subject"] = f"[antirelou] {subject(payload)}"
    body = json.dumps(payload, indent=2, ensure_ascii=False)
    message.set_content(f"{subject(payload)}\n\n{_advice(payload)}{body}\n")
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        return f"smtp: {type(exc).__name__}"
    return None


def subject(payload: dict[str, Any]) -> str:
    kind = payload.get("kind")
    if kind == "incident_opened":
        return f"raid suspected on {payload.get('line')}: replies to new senders are held"
    if kind == "incident_closed":
        return f"incident {payload.get('incident')} on {payload.get('line')} closed"
    if kind == "account_change":
        what = ACCOUNT_ACTIONS.get(str(payload.get("action")), str(payload.get("action")))
        return f"{what}: {payload.get('account')} (by {payload.get('by')})"
    if kind == "spend_threshold":
        share = int(float(payload.get("threshold", 0)) * 100)
        return f"{payload.get('what')} {share}% used ({payload.get('used_eur'):.2f} EUR)"
    if kind == "reply_failed":
        return f"replies on {payload.get('line')} are failing: {payload.get('error')}"[:160]
    if kind == "call_flood":
        calls = payload.get("calls_last_minute")
        return f"a flood of calls on {payload.get('line')}: {calls} in a minute"
    if kind == "provider_balance_low":
        left = f"{float(payload.get('balance', 0)):.2f} {payload.get('currency')}"
        return f"only {left} left on the {payload.get('provider')} account: top it up"
    return str(kind)


def _advice(payload: dict[str, Any]) -> str:
    if payload.get("kind") == "reply_failed":
        return (
            "A reply could not be sent and will not be tried again. If it is about the\n"
            "account (credentials, money, the number), every reply fails the same way:\n"
            "`antirelou check --providers` says what the provider sees; the dashboard's\n"
            "Messages page shows the failed replies.\n\n"
        )
    if payload.get("kind") == "call_flood":
        return (
            "Answered calls cost money, up to [budget] voice_share of each day's cap; they\n"
            "do not open an incident by themselves. If this is a raid, `antirelou incidents\n"
            "open NUMBER` rejects every call (not billed) and holds replies to new senders;\n"
            "`antirelou lines pause NUMBER` stops every reply too.\n\n"
        )
    if payload.get("kind") != "account_change":
        return ""
    return (
        "If neither you nor someone in your collective did this, an account may be in the\n"
        "wrong hands: tell an admin now. `antirelou users disable EMAIL` ends its sessions,\n"
        "`antirelou tokens list` and `antirelou users password EMAIL` do the rest.\n\n"
    )
