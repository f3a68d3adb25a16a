"""Operator alerts: stored with the event, delivered by webhook and e-mail, never blocking."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from antirelou import alerts, models, operations
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.inbound import receive
from antirelou.service import Service
from antirelou.web.accounts import Role, change_user, create_user
from tests.helpers import make_settings, sms


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(Hook.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def hook_url() -> Iterator[str]:
    Hook.received = []
    Hook.status = 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    server.shutdown()
    server.server_close()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(envelope.content)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def alert_service(database_url: str, clock: VirtualClock, **alert_settings: Any) -> Service:
    settings = make_settings(
        database_url, budget={"daily_cap": 0.2, "total": 100}, alerts=alert_settings
    )
    service = Service(settings, make_engine(database_url), clock)
    service.sync_lines()
    return service


def kinds(service: Service) -> list[tuple[str, str]]:
    with service.engine.connect() as conn:
        rows = conn.execute(select(models.alerts).order_by(models.alerts.c.id))
        return [(row.kind, row.status) for row in rows]


def test_spend_thresholds_fire_once_each(database_url: str, clock: VirtualClock) -> None:
    service = alert_service(database_url, clock)
    for i in range(4):  # 0.076, 0.153 (>50%? yes: 76%), refused, refused
        receive(service, sms(sender=f"+3361{i}234567"))
    with service.engine.connect() as conn:
        payloads = [json.loads(r.payload) for r in conn.execute(select(models.alerts))]
    daily = sorted(p["threshold"] for p in payloads if p["what"] == "daily_cap")
    assert daily == [0.5]  # 0.15254 of 0.20: 76%, not yet 80%
    service.dispose()


def test_incident_alerts_are_delivered_by_webhook_and_mail(
    database_url: str, clock: VirtualClock, hook_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    service = alert_service(
        database_url,
        clock,
        webhook_url=hook_url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_to=["collective@example.org"],
    )
    incident = operations.open_incident(service, "+33939000021", "alice", "forum")
    assert alerts.deliver_pending(service, clock.now()) == 1
    assert Hook.received[0]["kind"] == "incident_opened"
    assert Hook.received[0]["incident"] == incident
    assert b"raid suspected on +33939000021" in inbox.messages[0]
    assert kinds(service) == [("incident_opened", "sent")]
    service.dispose()


def test_a_failing_alert_is_retried_and_never_blocks(
    database_url: str, clock: VirtualClock, hook_url: str
) -> None:
    Hook.status = 500
    service = alert_service(database_url, clock, webhook_url=hook_url)
    operations.open_incident(service, "+33939000021", "alice")
    alerts.deliver_pending(service, clock.now())
    assert kinds(service) == [("incident_opened", "pending")]
    # Texts still go through while the alert waits.
    assert receive(service, sms()).message_id > 0
    Hook.status = 200
    alerts.deliver_pending(service, clock.now())  # not due yet: backoff
    assert kinds(service) == [("incident_opened", "pending")]
    clock.advance(timedelta(minutes=2))
    alerts.deliver_pending(service, clock.now())
    assert kinds(service) == [("incident_opened", "sent")]
    service.dispose()


def test_unreachable_smtp_is_recorded_not_raised(database_url: str, clock: VirtualClock) -> None:
    service = alert_service(
        database_url, clock, smtp_host="127.0.0.1", smtp_port=1, smtp_to=["x@example.org"]
    )
    operations.open_incident(service, "+33939000021", "alice")
    alerts.deliver_pending(service, clock.now())
    with service.engine.connect() as conn:
        row = conn.execute(select(models.alerts)).one()
    assert row.status == "pending"
    assert "smtp" in row.error
    service.dispose()


# --- account changes ----------------------------------------------------------------------


def mail_alerts(database_url: str, clock: VirtualClock, port: int, **more: Any) -> Service:
    return alert_service(
        database_url,
        clock,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_to=["collective@example.org"],
        **more,
    )


def test_account_changes_reach_the_collective_and_the_accounts_holder(
    database_url: str, clock: VirtualClock, hook_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    service = mail_alerts(database_url, clock, port, webhook_url=hook_url)
    account = create_user(
        service, "nour@example.org", "a long enough password", Role.VIEWER, "web:admin@example.org"
    )
    change_user(
        service, account, "web:admin@example.org", role=Role.ADMIN, password="another long password"
    )
    assert alerts.deliver_pending(service, clock.now()) == 2
    assert [(h["kind"], h["action"], h["account"]) for h in Hook.received] == [
        ("account_change", "user_add", "nour@example.org"),
        ("account_change", "user_change", "nour@example.org"),
    ]
    assert Hook.received[1]["details"] == {"password": True, "role": "admin"}
    assert inbox.recipients == [["collective@example.org", "nour@example.org"]] * 2
    changed = inbox.messages[1].decode()
    assert "account changed: nour@example.org (by web:admin@example.org)" in changed
    assert "tell an admin now" in changed
    for message in inbox.messages:  # never a password, not even hashed
        assert b"another long password" not in message
        assert b"argon2" not in message
    service.dispose()


def test_account_alerts_can_spare_the_holder_or_be_off(
    database_url: str, clock: VirtualClock, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    service = mail_alerts(database_url, clock, port, tell_account_holder=False)
    create_user(service, "nour@example.org", "a long enough password", Role.VIEWER, "cli:root")
    alerts.deliver_pending(service, clock.now())
    assert inbox.recipients == [["collective@example.org"]]
    service.dispose()
    quiet = mail_alerts(database_url, clock, port, account_changes=False)
    create_user(quiet, "sam@example.org", "a long enough password", Role.VIEWER, "cli:root")
    alerts.deliver_pending(quiet, clock.now())
    assert len(inbox.messages) == 1
    assert kinds(quiet)[-1] == ("account_change", "sent")  # done with, not retried
    quiet.dispose()


def test_other_operator_actions_are_no_account_alert(
    database_url: str, clock: VirtualClock
) -> None:
    service = alert_service(database_url, clock)
    operations.set_paused(service, "+33939000021", True, "alice")
    assert kinds(service) == []
    service.dispose()


# --- logins from a new network -------------------------------------------------------------


def log_in_from(service: Service, address: str, email: str = "nour@example.org") -> None:
    from starlette.testclient import TestClient

    from tests.dashboard_kit import dashboard_app, log_in

    app = dashboard_app(service)
    with TestClient(app, base_url="https://testserver", client=(address, 50000)) as client:
        log_in(client, email, "a long enough password")


def test_a_login_from_a_new_network_reaches_the_collective_and_the_holder(
    database_url: str, clock: VirtualClock, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    service = mail_alerts(database_url, clock, port)
    create_user(service, "nour@example.org", "a long enough password", Role.VIEWER, "cli:root")
    alerts.deliver_pending(service, clock.now())
    inbox.messages.clear()
    inbox.recipients.clear()
    log_in_from(service, "203.0.113.5")  # her first login: nothing to compare with
    clock.advance(timedelta(days=3))
    log_in_from(service, "203.0.113.77")  # the same /24
    log_in_from(service, "2001:db8:1:2::9")
    log_in_from(service, "2001:db8:1:ff::1")  # the same /48
    assert alerts.deliver_pending(service, clock.now()) == 1
    clock.advance(timedelta(days=1))
    log_in_from(service, "198.51.100.9")
    assert alerts.deliver_pending(service, clock.now()) == 1
    assert inbox.recipients == [["collective@example.org", "nour@example.org"]] * 2
    mail = inbox.messages[1].decode()
    assert "login from a network not used in the last 90 days: nour@example.org" in mail
    assert "198.51.100.0/24" in mail
    assert "tell an admin now" in mail
    service.dispose()


def test_after_a_long_silence_the_last_network_is_the_one_expected(
    database_url: str, clock: VirtualClock
) -> None:
    service = alert_service(database_url, clock, new_network_logins=True)
    create_user(service, "nour@example.org", "a long enough password", Role.VIEWER, "cli:root")
    log_in_from(service, "203.0.113.5")
    clock.advance(timedelta(days=200))
    log_in_from(service, "203.0.113.6")  # where she was last: no news
    clock.advance(timedelta(days=200))
    log_in_from(service, "192.0.2.1")
    news = [k for k in kinds(service) if k[0] == "account_change"]
    assert len(news) == 2  # the account created, then the login from 192.0.2.0/24
    with service.engine.connect() as conn:
        payload = json.loads(conn.execute(select(models.alerts.c.payload)).all()[-1][0])
    assert payload["details"]["network"] == "192.0.2.0/24"
    service.dispose()


def test_new_network_logins_can_be_left_to_the_audit_log(
    database_url: str, clock: VirtualClock, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    service = mail_alerts(database_url, clock, port, new_network_logins=False)
    create_user(service, "nour@example.org", "a long enough password", Role.VIEWER, "cli:root")
    log_in_from(service, "203.0.113.5")
    log_in_from(service, "198.51.100.9")
    alerts.deliver_pending(service, clock.now())
    assert len(inbox.messages) == 1  # the account created, not the login
    from tests.dashboard_kit import audited

    assert audited(service, "login_new_network") == 1
    service.dispose()
