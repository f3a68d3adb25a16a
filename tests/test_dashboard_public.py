"""Public pages: /why in French and English, the counter, and what a flood of hits costs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI

from antirelou import operations
from antirelou.clock import VirtualClock
from antirelou.inbound import receive
from antirelou.service import Service
from antirelou.web import public
from tests.dashboard_kit import client_for, dashboard_app
from tests.helpers import LINE, sms
from tests.test_raids import INSULTS, fr_mobile


@pytest.fixture
def app(service: Service) -> FastAPI:
    return dashboard_app(service)


def test_why_in_french_and_english_with_the_privacy_notice(app: FastAPI) -> None:
    with client_for(app) as (client, _):
        fr, en = client.get("/why"), client.get("/why/en")
        assert client.get("/why/de").status_code == 404
    assert fr.status_code == en.status_code == 200
    for words in ("consentement", "Effacement", "RGPD", "STOP"):
        assert words in fr.text
    for words in ("Consent", "Erasure", "GDPR", "STOP"):
        assert words in en.text
    assert fr.headers["cache-control"].startswith("public")
    assert 'lang="en"' in en.text


def test_why_says_how_often_the_number_answers(database_url: str, clock: VirtualClock) -> None:
    """The page promises what the service does: once per the line's reply window."""
    from antirelou.db import make_engine
    from antirelou.service import Service as Svc
    from tests.helpers import make_settings

    settings = make_settings(database_url)
    week = {"reply_window": timedelta(days=7)}
    lines = tuple(line.model_copy(update=week) for line in settings.lines)
    service = Svc(settings.model_copy(update={"lines": lines}), make_engine(database_url), clock)
    with client_for(dashboard_app(service)) as (client, _):
        fr, en = client.get("/why").text, client.get("/why/en").text
    assert "qu'une fois par période de 7 jours" in fr.replace("&#39;", "'")
    assert "answers you once in 7 days" in en
    service.dispose()


def test_why_is_served_from_memory_with_an_etag(app: FastAPI) -> None:
    with client_for(app) as (client, _):
        first = client.get("/why")
        again = client.get("/why", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_counter_counts_answers_and_ignored_raid_texts(
    app: FastAPI, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from antirelou.providers.sandbox import SandboxSender
    from antirelou.worker import Worker

    receive(service, sms(sender="+33612345678", body="Salut"))
    Worker(service, {"sandbox": SandboxSender()}, deliver_alerts=False).drain()
    operations.open_incident(service, LINE, "test")
    for i in range(3):
        receive(service, sms(sender=fr_mobile(i), body=INSULTS[i]))
    with client_for(app) as (client, _):
        page = client.get("/counter")
        assert 'id="answered">1<' in page.text
        assert 'id="ignored">3<' in page.text

        def no_database(_service: Service) -> tuple[int, int]:
            raise AssertionError("the counter hit the database within its TTL")

        monkeypatch.setattr(public, "count_public", no_database)
        for _ in range(50):
            assert client.get("/counter/en").status_code == 200


def test_counter_can_be_switched_off(service: Service) -> None:
    app = dashboard_app(service, public_counter=False)
    with client_for(app) as (client, _):
        assert client.get("/counter").status_code == 404
        assert "/counter" not in client.get("/why").text


def test_install_twice_changes_only_the_options(service: Service) -> None:
    from antirelou.web.dashboard import install

    app = dashboard_app(service)
    routes = len(app.routes)
    install(app, public_counter=False)
    assert len(app.routes) == routes
    with client_for(app) as (client, _):
        assert client.get("/counter").status_code == 404
