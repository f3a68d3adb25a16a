"""Where an account logs in from: a network it has not used lately is news for its holder.

A stolen password is used from somewhere else. Every login is audited with the client's
address (as the login limits see it: credentials.address_of). A login from a network
(IPv4 /24, IPv6 /48: roughly one provider's neighbourhood) that the account has not
logged in from in the last RECENT days is audited once more, as `login_new_network`: an
account change, so the collective and the account's holder get an alert (alerts.py), as
for a changed password. After a silence longer than RECENT, the network of the last login
is the one expected, while its address is kept ([evidence] retention_addresses, 180 days);
after that, any login is news.

Never an alert: an account's first login (nothing to compare it with), and an address that
is no IP address. `[alerts] new_network_logins = false` keeps the audit rows and sends no
alert (for a collective on mobile data, whose addresses move every day).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from antirelou import models
from antirelou.evidence.settings import NEW_NETWORK_WINDOW
from antirelou.operations import audit
from antirelou.service import Service
from antirelou.web.accounts import User
from antirelou.web.auth_tables import trusted_devices

RECENT = NEW_NETWORK_WINDOW  # addresses are kept longer ([evidence] retention_addresses)
LOGIN, NEW_NETWORK = "login", "login_new_network"
_KEPT = 500  # logins read back at most (a few a day for 90 days)


def network_of(address: str) -> str | None:
    """The client's network (IPv4 /24, IPv6 /48); None for what is no IP address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def record_login(service: Service, user: User, address: str) -> None:
    """Audit a login, and the news when it comes from a network not used lately."""
    now = service.clock.now()
    actor = f"web:{user.email}"
    network = network_of(address)
    with service.engine.begin() as conn:
        expected = _expected(conn, actor, now)
        novel = network is not None and expected is not None and network not in expected
        marked = {"new_network": True} if novel else {}  # for My account's list
        audit(conn, actor, LOGIN, None, now, address=address, **marked)
        if novel:
            audit(conn, actor, NEW_NETWORK, user.email, now, address=address, network=network)


def _expected(conn: Connection, actor: str, now: datetime) -> set[str | None] | None:
    """The networks this account logged in from within RECENT, else that of its last
    login; None when it never logged in."""
    log = models.audit_log
    rows = conn.execute(
        select(log.c.at, log.c.details)
        .where(log.c.actor == actor, log.c.action == LOGIN)
        .order_by(log.c.at.desc())
        .limit(_KEPT)
    ).all()
    if not rows:
        return None
    recent = [row for row in rows if row.at > now - RECENT] or rows[:1]
    return {network_of(str(json.loads(row.details).get("address", ""))) for row in recent}


@dataclass(frozen=True)
class Login:
    at: datetime
    address: str
    network: str | None
    new_network: bool  # it raised an alert


def recent_logins(conn: Connection, user: User, limit: int = 10) -> list[Login]:
    """The account's last logins, for its holder to check on My account."""
    log = models.audit_log
    rows = conn.execute(
        select(log.c.at, log.c.details)
        .where(log.c.actor == f"web:{user.email}", log.c.action == LOGIN)
        .order_by(log.c.at.desc(), log.c.id.desc())
        .limit(limit)
    ).all()
    logins = []
    for row in rows:
        details = json.loads(row.details)
        address = str(details.get("address", ""))
        new = bool(details.get("new_network"))
        logins.append(Login(row.at, address, network_of(address), new))
    return logins


def trusted_browsers(conn: Connection, user: User) -> int:
    """How many browsers are trusted for the account (web/devices.py)."""
    mine = trusted_devices.c.user_id == user.id
    query = select(func.count()).where(mine, trusted_devices.c.link_until.is_(None))
    return int(conn.execute(query).scalar_one())
