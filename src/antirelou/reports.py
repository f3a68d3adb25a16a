"""Plain-text reports for the CLI (the dashboard reads the same functions' data)."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from antirelou import budget, models
from antirelou.money import format_eur
from antirelou.service import Service


def incident_rows(service: Service) -> list[str]:
    i, m = models.incidents, models.messages
    texts = select(func.count()).where(m.c.incident_id == i.c.id).correlate(i).scalar_subquery()
    query = select(i, texts.label("texts")).order_by(i.c.id.desc())
    with service.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        f"#{row.id} {row.line} opened {row.opened_at:%Y-%m-%d %H:%M:%S}Z by {row.opened_by}, "
        + (f"closed {row.closed_at:%Y-%m-%d %H:%M:%S}Z" if row.closed_at else "OPEN")
        + f", {row.texts} texts, signals {json.loads(row.signals).get('signals')}"
        for row in rows
    ] or ["no incident"]


def money_report(service: Service) -> str:
    now = service.clock.now()
    caps = service.caps
    line = service.settings.lines[0]
    day = service.local_day(line, now)
    with service.engine.connect() as conn:
        spent, reserved = budget.spent_on_day(conn, day)
        snap = budget.snapshot(conn, day, caps)
        by_day = budget.spend_by_day(conn, now - timedelta(days=7))
        days = budget.days_left(conn, now, caps)
    lines = [
        f"today ({day}, {line.timezone}): replies and calls {format_eur(spent)} spent"
        f" + {format_eur(reserved)} reserved, daily cap {format_eur(caps.daily)}",
        f"pot: {format_eur(snap.total_cap)}, used {format_eur(snap.total_used)}"
        f" (inbound included), left {format_eur(snap.total_cap - snap.total_used)}",
        "days of pot left at the last 7 days' pace: "
        + ("no spending yet" if days is None else f"{days:.1f}"),
        "spend per day (UTC, inbound, replies and answered calls):",
    ]
    lines += [f"  {d}: {format_eur(v)}" for d, v in sorted(by_day.items())]
    return "\n".join(lines)
