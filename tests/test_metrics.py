"""/metrics: figures read from the database follow what happens, and only trusted callers
get them."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from antirelou import models, operations
from antirelou.balances import BalanceWatch
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.observability import provider_metrics
from antirelou.providers.base import Balance, OutgoingSms, SendError, SendResult
from antirelou.service import Service
from antirelou.web.app import create_app
from antirelou.web.metrics import SETTLE, Tally
from antirelou.web.reads import reader
from antirelou.worker import Worker
from tests.fakes.twilio_api import FakeTwilio
from tests.helpers import LINE, make_settings
from tests.test_webhooks import (
    ACCOUNT_SID,
    ESTIMATE,
    SMS_PATH,
    TOKEN,
    inbound_params,
    message_sid,
    post_signed,
    twilio_worker,
)

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

METRICS_TOKEN = "scrape-me-please-0123456789"
BEARER = {"Authorization": f"Bearer {METRICS_TOKEN}"}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def twilio_service(database_url: str, clock: VirtualClock, **web: Any) -> Service:
    settings = make_settings(
        database_url,
        lines=[{"number": LINE, "provider": "twilio"}],
        twilio={"account_sid": ACCOUNT_SID, "auth_token": TOKEN},
        web=web,
    )
    service = Service(settings, make_engine(database_url), clock)
    service.sync_lines()
    return service


@pytest.fixture
def guarded(database_url: str, clock: VirtualClock) -> Iterator[Service]:
    """A Twilio line, and a metrics token."""
    service = twilio_service(database_url, clock, metrics_token=METRICS_TOKEN)
    yield service
    service.dispose()


@pytest.fixture
def scraper(guarded: Service) -> Iterator[TestClient]:
    with TestClient(create_app(guarded)) as client:
        yield client


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics", headers=BEARER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def texts(samples: Samples) -> float:
    return value(samples, "antirelou_inbound_texts_total", provider="twilio", line=LINE)


def test_metrics_follow_texts_replies_and_spend(
    scraper: TestClient, guarded: Service, clock: VirtualClock
) -> None:
    before = scrape(scraper)
    assert value(before, "antirelou_database_up") == 1
    assert texts(before) == 0
    assert value(before, "antirelou_replies", status="queued") == 0
    assert value(before, "antirelou_incident_open", line=LINE) == 0
    assert value(before, "antirelou_daily_cap_euros") == 20.0

    for n, sender in enumerate(("+33612345678", "+33612345679", "+33612345678"), start=1):
        params = inbound_params(message_sid(n), sender=sender, body="salut")
        assert post_signed(scraper, SMS_PATH, params).status_code == 200
    clock.advance(timedelta(seconds=30))

    queued = scrape(scraper)
    assert texts(queued) == 3
    first = ("antirelou_decisions_total", "reply", "first_text_in_window")
    assert value(queued, first[0], action=first[1], reason=first[2]) == 2
    again = value(
        queued, "antirelou_decisions_total", action="none", reason="already_replied_in_window"
    )
    assert again == 1
    assert value(queued, "antirelou_replies", status="queued") == 2
    assert value(queued, "antirelou_outbox_due") == 2
    assert value(queued, "antirelou_outbox_oldest_due_age_seconds") == 30
    reserved = value(queued, "antirelou_reply_spend_euros", period="today", state="reserved")
    assert reserved == pytest.approx(2 * ESTIMATE / 1e6)

    sends = ("antirelou_provider_request_seconds_count", "twilio", "send")
    sent_before = value(queued, sends[0], provider=sends[1], operation=sends[2])
    with FakeTwilio(ACCOUNT_SID, TOKEN) as fake:
        worker = twilio_worker(fake, guarded)
        try:
            assert worker.drain() == 2
        finally:
            worker.close()

    sent = scrape(scraper)
    assert texts(sent) == 3  # a counter: unchanged by replies
    assert value(sent, "antirelou_replies", status="sent") == 2
    assert value(sent, "antirelou_replies", status="queued") == 0
    assert value(sent, "antirelou_outbox_due") == 0
    assert value(sent, "antirelou_outbox_oldest_due_age_seconds") == 0
    for period in ("today", "total"):
        spent = value(sent, "antirelou_reply_spend_euros", period=period, state="spent")
        assert spent == pytest.approx(2 * ESTIMATE / 1e6)
    assert value(sent, sends[0], provider=sends[1], operation=sends[2]) == sent_before + 2

    operations.open_incident(guarded, LINE, "test")
    operations.set_paused(guarded, LINE, True, "test")
    raided = scrape(scraper)
    assert value(raided, "antirelou_incident_open", line=LINE) == 1
    assert value(raided, "antirelou_line_paused", line=LINE) == 1


def test_the_providers_balances_as_the_worker_last_asked_them(
    scraper: TestClient, guarded: Service
) -> None:
    assert not [k for k in scrape(scraper) if k[0] == "antirelou_provider_balance"]
    ask = BalanceWatch(guarded, lambda _s, _p: Balance(12.5, "USD"), frozenset({"twilio"}))
    ask()
    samples = scrape(scraper)
    assert value(samples, "antirelou_provider_balance", provider="twilio", currency="USD") == 12.5


class Failing:
    """A sender whose provider is down."""

    name = "twilio"

    def send(self, sms: OutgoingSms) -> SendResult:
        raise SendError("503 from the provider", transient=True, maybe_sent=True, code="http_503")

    def find_sent(self, sms: OutgoingSms, since: Any) -> SendResult | None:
        return None

    def close(self) -> None:
        pass


def test_provider_errors_are_counted_by_kind_and_code(
    scraper: TestClient, guarded: Service
) -> None:
    labels = {"provider": "twilio", "operation": "send", "kind": "transient", "code": "http_503"}
    before = value(scrape(scraper), "antirelou_provider_errors_total", **labels)
    params = inbound_params(message_sid(1))
    assert post_signed(scraper, SMS_PATH, params).status_code == 200
    assert Worker(guarded, {"twilio": Failing()}, deliver_alerts=False).run_once() == 1
    after = scrape(scraper)
    assert value(after, "antirelou_provider_errors_total", **labels) == before + 1
    assert provider_metrics().errors.labels(*labels.values())._value.get() >= 1


def test_metrics_need_the_token(scraper: TestClient) -> None:
    assert scraper.get("/metrics").status_code == 401
    wrong = scraper.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    latin1 = {"Authorization": "Bearer t\u00e9l\u00e9".encode("latin-1")}  # bytes as sent
    assert scraper.get("/metrics", headers=latin1).status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert "antirelou_" not in wrong.text
    assert scraper.get("/metrics", headers=BEARER).status_code == 200


def test_without_a_token_only_direct_local_connections_are_served(service: Service) -> None:
    app: FastAPI = create_app(service)
    with TestClient(app, client=("127.0.0.1", 40000)) as local:
        assert local.get("/metrics").status_code == 200
        relayed = local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
        assert relayed.status_code == 401
    with TestClient(app, client=("203.0.113.7", 40000)) as remote:
        assert remote.get("/metrics").status_code == 401


def test_the_tally_reads_each_settled_row_once(service: Service, clock: VirtualClock) -> None:
    from antirelou.inbound import receive
    from tests.helpers import sms

    m = models.messages
    tally = Tally(m, (m.c.line,), m.c.received_at)

    def counted() -> int:
        with reader(service).connect() as conn:
            return tally.counts(conn, clock.now())[(LINE,)]

    receive(service, sms(sender="+33612345678"))
    assert counted() == 1
    assert tally.settled_id == 0  # too recent to settle
    clock.advance(SETTLE * 2)
    receive(service, sms(sender="+33612345679"))
    assert counted() == 2
    assert tally.settled_id == 1  # the first row is settled, the second is not
    clock.advance(SETTLE * 2)
    assert counted() == 2
    assert counted() == 2
    assert tally.settled_id == 2
    receive(service, sms(sender="+33612345670"))
    assert counted() == 3
