"""`/metrics` for Prometheus: read from the database at scrape time, plus provider timings.

Every figure but the provider call timings is read from the database when Prometheus
scrapes, so it is the same whichever web process answers and however many workers run:

- texts received and decisions are counters over `messages` (retention erases a text's
  content, never its row, so they only grow). Each process keeps what it has counted and
  only reads rows newer than a minute-old watermark, so a scrape stays cheap on a table
  of millions of rows;
- replies by status, spend, caps, the providers' balances (as the worker last asked them),
  incidents, paused lines and the outbox queue are gauges read with a few small queries
  (indexed or on tiny tables).

Access: with `[web] metrics_token` set, a request needs `Authorization: Bearer <token>`.
Without a token, only a direct connection from the machine itself is served: a loopback
client address and no X-Forwarded-For / Forwarded header (a request relayed by a reverse
proxy on the same machine comes from outside). Anything else gets 401 or 403.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Column, ColumnElement, Connection, Table, func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from antirelou import balances, budget, inbox, models, observability
from antirelou.outbox import ReplyStatus
from antirelou.providers.common import same_text
from antirelou.service import Service
from antirelou.web.reads import reader
from antirelou.web.state import AppState

# A row older than this is taken as committed for good: ids below it are counted once.
SETTLE = timedelta(minutes=1)
MICROS = 1_000_000


@dataclass
class Tally:
    """Counts of an append-only table's rows, grouped by some columns, read incrementally.

    Rows with an id up to `settled_id` are counted once and remembered; each read then
    counts only newer rows. The watermark only moves past rows older than SETTLE, so a row
    whose transaction commits a little after a higher id's is not skipped.
    """

    table: Table
    columns: tuple[Column[Any], ...]
    at: Column[Any]
    settled_id: int = 0
    settled: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def counts(self, conn: Connection, now: datetime) -> Counter[tuple[Any, ...]]:
        with self.lock:
            ident = self.table.c.id
            newer = ident > self.settled_id
            first_fresh = conn.execute(
                select(func.min(ident)).where(newer, self.at >= now - SETTLE)
            ).scalar()
            bound = [newer] if first_fresh is None else [newer, ident < first_fresh]
            upto = conn.execute(select(func.max(ident)).where(*bound)).scalar()
            if upto is not None:
                self.settled.update(self._grouped(conn, newer, ident <= upto))
                self.settled_id = int(upto)
            return self.settled + self._grouped(conn, ident > self.settled_id)

    def _grouped(self, conn: Connection, *where: ColumnElement[bool]) -> Counter[tuple[Any, ...]]:
        query = select(*self.columns, func.count()).where(*where).group_by(*self.columns)
        return Counter({tuple(row[:-1]): int(row[-1]) for row in conn.execute(query)})


class DatabaseCollector(Collector):
    """What the database says, at scrape time."""

    def __init__(self, service: Service) -> None:
        self.service = service
        m = models.messages
        self.inbound = Tally(m, (m.c.provider, m.c.line), m.c.received_at)
        self.decisions = Tally(m, (m.c.decision, m.c.reasons), m.c.received_at)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("antirelou_database_up", "1 if the database answered the scrape.")
        try:
            with reader(self.service).connect() as conn:
                found = list(self._read(conn, self.service.clock.now()))
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from found

    def _read(self, conn: Connection, now: datetime) -> Iterator[Metric]:
        yield from self._texts(conn, now)
        yield self._replies(conn)
        yield from self._queue(conn, now)
        yield from self._spend(conn, now)
        yield from self._lines(conn)

    def _texts(self, conn: Connection, now: datetime) -> Iterator[Metric]:
        inbound = CounterMetricFamily(
            "antirelou_inbound_texts", "Texts received and stored.", labels=["provider", "line"]
        )
        for (provider, line), n in sorted(self.inbound.counts(conn, now).items()):
            inbound.add_metric([provider, line], n)
        yield inbound
        by_reason: Counter[tuple[str, str]] = Counter()
        for (action, reasons), n in self.decisions.counts(conn, now).items():
            for reason in _reasons(reasons):
                by_reason[(action, reason)] += n
        decisions = CounterMetricFamily(
            "antirelou_decisions",
            "Decisions taken on texts, by action (reply, hold, none) and reason; a text "
            "counts once per reason it was given.",
            labels=["action", "reason"],
        )
        for labels, n in sorted(by_reason.items()):
            decisions.add_metric(list(labels), n)
        yield decisions

    def _replies(self, conn: Connection) -> Metric:
        r = models.replies
        query = select(r.c.status, func.count()).group_by(r.c.status)
        found: dict[str, int] = {status: int(n) for status, n in conn.execute(query)}
        replies = GaugeMetricFamily(
            "antirelou_replies", "Replies now in each status.", labels=["status"]
        )
        for status in ReplyStatus:
            replies.add_metric([status.value], int(found.get(status.value, 0)))
        return replies

    def _queue(self, conn: Connection, now: datetime) -> Iterator[Metric]:
        r = models.replies
        due, oldest = conn.execute(
            select(func.count(), func.min(r.c.due_at)).where(
                r.c.status == ReplyStatus.QUEUED.value, r.c.due_at <= now
            )
        ).one()
        yield GaugeMetricFamily(
            "antirelou_outbox_due", "Queued replies whose time has come.", value=int(due)
        )
        age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "antirelou_outbox_oldest_due_age_seconds",
            "How long the oldest due reply has been waiting to be sent (0 when none).",
            value=age,
        )
        yield from self._inbox(now)

    def _inbox(self, now: datetime) -> Iterator[Metric]:
        parked = inbox.state(self.service)
        yield GaugeMetricFamily(
            "antirelou_inbox_waiting",
            'Texts accepted and waiting for the worker to decide them ([web] intake = "queued").',
            value=parked.waiting,
        )
        yield GaugeMetricFamily(
            "antirelou_inbox_stuck",
            "Parked texts whose decision failed again and again: they wait for an operator.",
            value=parked.stuck,
        )
        age = max(0.0, (now - parked.oldest).total_seconds()) if parked.oldest else 0.0
        yield GaugeMetricFamily(
            "antirelou_inbox_oldest_age_seconds",
            "How long the oldest waiting text has been waiting for its decision (0 when none).",
            value=age,
        )

    def _spend(self, conn: Connection, now: datetime) -> Iterator[Metric]:
        c = models.budget_counters
        day = self.service.local_day(self.service.settings.lines[0], now)
        keys = {budget.TOTAL: "total", budget.day_key(day): "today"}
        rows = conn.execute(
            select(c.c.key, c.c.spent_micros, c.c.reserved_micros).where(c.c.key.in_(keys))
        ).all()
        spend = GaugeMetricFamily(
            "antirelou_reply_spend_euros",
            "Money spent on replies (spent) and set aside for queued ones (reserved), "
            "today (first line's timezone) and since the start.",
            labels=["period", "state"],
        )
        found = {keys[key]: (spent, reserved) for key, spent, reserved in rows}
        for period in ("today", "total"):
            spent, reserved = found.get(period, (0, 0))
            spend.add_metric([period, "spent"], int(spent) / MICROS)
            spend.add_metric([period, "reserved"], int(reserved) / MICROS)
        yield spend
        caps = self.service.caps
        yield GaugeMetricFamily(
            "antirelou_inbound_spend_euros",
            "What receiving texts has cost since the start.",
            value=budget.inbound_spent(conn) / MICROS,
        )
        yield GaugeMetricFamily(
            "antirelou_daily_cap_euros", "The daily spending cap.", value=caps.daily / MICROS
        )
        yield GaugeMetricFamily(
            "antirelou_pot_euros",
            "The pot: the configured total plus donations.",
            value=budget.pot(conn, caps) / MICROS,
        )
        yield self._provider_balances(conn)

    def _provider_balances(self, conn: Connection) -> Metric:
        gauge = GaugeMetricFamily(
            "antirelou_provider_balance",
            "The money each provider last said is on its account, in its currency.",
            labels=["provider", "currency"],
        )
        for found in balances.latest(conn):
            if found.amount is not None:
                gauge.add_metric([found.provider, found.currency or ""], found.amount)
        return gauge

    def _lines(self, conn: Connection) -> Iterator[Metric]:
        numbers = [line.number for line in self.service.settings.lines]
        i, lines = models.incidents, models.lines
        open_on = set(conn.execute(select(i.c.line).where(i.c.closed_at.is_(None))).scalars())
        paused = set(conn.execute(select(lines.c.number).where(lines.c.paused)).scalars())
        incident = GaugeMetricFamily(
            "antirelou_incident_open", "1 while a line has an open incident.", labels=["line"]
        )
        pause = GaugeMetricFamily(
            "antirelou_line_paused", "1 while a line is paused (kill switch).", labels=["line"]
        )
        for number in numbers:
            incident.add_metric([number], int(number in open_on))
            pause.add_metric([number], int(number in paused))
        yield incident
        yield pause


def _reasons(stored: str) -> Iterable[str]:
    try:
        reasons = json.loads(stored or "[]")
    except ValueError:
        return ["unreadable"]
    if not isinstance(reasons, list) or not reasons:
        return ["none"]
    return [str(reason) for reason in reasons]


class ProviderCollector(Collector):
    """The worker's provider call metrics: this process's, or every process's through
    PROMETHEUS_MULTIPROC_DIR (see observability.py)."""

    def collect(self) -> Iterator[Metric]:
        path = observability.multiprocess_dir()
        if path:
            scratch = CollectorRegistry()
            MultiProcessCollector(scratch, path=path)  # type: ignore[no-untyped-call]
            yield from scratch.collect()
        else:
            yield from observability.provider_metrics().registry.collect()


def registry_for(service: Service) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(service))
    registry.register(ProviderCollector())
    return registry


def _direct_local(request: Request) -> bool:
    if request.headers.get("x-forwarded-for") or request.headers.get("forwarded"):
        return False
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refusal(request: Request, token: str) -> Response | None:
    if token:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() == "bearer" and same_text(token, value.strip()):
            return None
        return PlainTextResponse(
            "a bearer token is needed\n", 401, headers={"WWW-Authenticate": "Bearer"}
        )
    if _direct_local(request):
        return None
    return PlainTextResponse(
        "/metrics is only served to the machine itself; set [web] metrics_token to scrape "
        "it from elsewhere\n",
        401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def install(app: FastAPI) -> None:
    """Add GET /metrics to the app made by create_app(service)."""
    state = app.state.antirelou
    assert isinstance(state, AppState), "call install() on the app made by create_app(service)"
    service = state.service
    registry = registry_for(service)

    async def metrics(request: Request) -> Response:
        token = service.settings.web.metrics_token.get_secret_value()
        refused = _refusal(request, token)
        if refused is not None:
            return refused
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
