"""The dashboard's pages and buttons, as an operator uses them (HTML parsed, not grepped)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from antirelou import models, operations
from antirelou.clock import VirtualClock
from antirelou.encoding import segment
from antirelou.inbound import receive
from antirelou.outbox import ReplyStatus
from antirelou.phone import mask
from antirelou.policy import Action, Reason
from antirelou.service import Service
from antirelou.web.i18n import FR, translator
from antirelou.web.render import TEMPLATES
from tests.dashboard_kit import (
    ADMIN,
    MODERATOR,
    PASSWORD,
    VIEWER,
    add_accounts,
    client_for,
    dashboard_app,
)
from tests.helpers import LINE, replies, sms
from tests.test_raids import INSULTS, fr_mobile

GENUINE = "+33612345678"


class Texts(HTMLParser):
    """The visible text of a page, and the text of elements with a given class."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.classes: list[str] = []
        self.blurred: list[str] = []
        self._in_blur = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        self.classes += classes
        if "blurred" in classes:
            self._in_blur += 1

    def handle_endtag(self, tag: str) -> None:
        if self._in_blur and tag in ("p", "span"):
            self._in_blur -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_blur:
            self.blurred.append(data.strip())


def parse(html: str) -> Texts:
    parser = Texts()
    parser.feed(html)
    return parser


@pytest.fixture
def app(service: Service) -> FastAPI:
    add_accounts(service)
    return dashboard_app(service)


def audit_actions(service: Service) -> list[str]:
    with service.engine.connect() as conn:
        return [row.action for row in conn.execute(select(models.audit_log))]


def raid(service: Service, clock: VirtualClock, count: int = 10) -> None:
    for i in range(count):
        clock.advance(timedelta(seconds=2))
        receive(service, sms(sender=fr_mobile(1000 + i), body=INSULTS[i % len(INSULTS)]))


def test_overview_counts_texts_and_replies(app: FastAPI, service: Service) -> None:
    receive(service, sms(sender=GENUINE, body="Salut c'est Marc"))
    receive(service, sms(sender=GENUINE, body="Tu réponds pas ?"))
    with client_for(app, VIEWER) as (client, _):
        page = client.get("/dashboard")
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in page.headers["content-security-policy"]
        data = client.get("/api/overview").json()
    assert data["texts_today"] == 2
    assert data["new_senders_today"] == 1
    assert data["refused_today"] == 1
    assert data["queued_now"] == 1
    assert sum(data["series"]["texts"]) == 2
    assert data["incidents"] == []


def test_raid_shows_the_incident_banner_with_its_signals(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    raid(service, clock)
    with client_for(app, VIEWER) as (client, _):
        page = parse(client.get("/dashboard").text)
        data = client.get("/api/overview").json()
    assert "banner" in page.classes
    assert "expéditeurs hostiles" in " ".join(page.text)  # the signal, in French
    (incident,) = data["incidents"]
    assert "hostile_senders" in incident["signals"]


def test_abusive_texts_are_blurred_and_reasons_shown(app: FastAPI, service: Service) -> None:
    receive(service, sms(sender=fr_mobile(1), body="sale pute"))
    receive(service, sms(sender=GENUINE, body="Coucou c'est Paul"))
    with client_for(app, MODERATOR) as (client, _):
        page = parse(client.get("/dashboard/messages").text)
    assert page.blurred == ["sale pute"]
    assert "premier SMS injurieux" in page.text  # abusive_first_text, translated
    assert "Coucou c'est Paul" in page.text


def test_viewers_see_numbers_masked_moderators_in_full(app: FastAPI, service: Service) -> None:
    receipt = receive(service, sms(sender=GENUINE, body="Bonjour"))
    for who, shown, hidden in ((VIEWER, mask(GENUINE), GENUINE), (MODERATOR, GENUINE, None)):
        with client_for(app, who) as (client, _):
            for path in ("/dashboard/messages", f"/dashboard/senders/{receipt.message_id}"):
                html = client.get(path).text
                assert shown in html
                if hidden:
                    assert hidden not in html
            api = client.get("/api/messages").json()["messages"][0]
            assert api["sender"] == shown


def test_search_by_text_sender_and_decision(app: FastAPI, service: Service) -> None:
    receive(service, sms(sender=GENUINE, body="Salut c'est Marc du bar"))
    receive(service, sms(sender=fr_mobile(2), body="Bonsoir, Julien"))
    receive(service, sms(sender=fr_mobile(2), body="encore moi"))
    with client_for(app, MODERATOR) as (client, _):

        def bodies(**params: str) -> list[str]:
            return [
                m["body"] for m in client.get("/api/messages", params=params).json()["messages"]
            ]

        assert bodies(q="marc") == ["Salut c'est Marc du bar"]
        assert bodies(sender="06 12 34 56 78".replace("06", "+336", 1).replace(" ", "")) == [
            "Salut c'est Marc du bar"
        ]
        assert bodies(decision="none") == ["encore moi"]
        html = client.get("/dashboard/messages", params={"q": "julien"}).text
        assert "Bonsoir, Julien" in html
        assert "Salut c'est Marc" not in html


def test_sender_page_blocks_and_unblocks_with_expiry(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    first = receive(service, sms(sender=GENUINE, body="Salut"))
    url = f"/dashboard/senders/{first.message_id}"
    with client_for(app, MODERATOR) as (client, csrf):
        response = client.post(url + "/block", data={"csrf": csrf, "duration": "1d"})
        assert response.status_code == 200
        assert "bloqué" in response.text
        assert blocked_until(service) == clock.now() + timedelta(days=1)
        client.post(url + "/unblock", data={"csrf": csrf})
        assert blocked_until(service) is None
        client.post(url + "/block", data={"csrf": csrf, "duration": ""})  # for good
        clock.advance(timedelta(days=40))  # a new reply window: he would get a reply
        later = receive(service, sms(sender=GENUINE, body="re"))
        assert later.decision.reasons == (Reason.BLOCKED,)
    with client_for(app, MODERATOR) as (client, _):  # the session expired meanwhile
        assert "définitivement" in client.get(url).text
    actions = [a for a in audit_actions(service) if a.startswith("sender_")]
    assert actions == ["sender_block", "sender_unblock", "sender_block"]


def blocked_until(service: Service) -> object:
    with service.engine.connect() as conn:
        return conn.execute(select(models.senders.c.blocked_until)).scalar()


def test_pause_from_the_controls_stops_replies(app: FastAPI, service: Service) -> None:
    with client_for(app, MODERATOR) as (client, csrf):
        response = client.post(
            f"/dashboard/lines/{LINE}/pause", data={"csrf": csrf, "reason": "raid"}
        )
        assert response.status_code == 200
        assert service.is_paused(LINE)
        assert receive(service, sms(sender=GENUINE)).decision.reasons[0].value == "line_paused"
        client.post(f"/dashboard/lines/{LINE}/resume", data={"csrf": csrf})
        assert not service.is_paused(LINE)
    assert audit_actions(service)[-2:] == ["pause", "resume"]


def test_viewers_cannot_act(app: FastAPI, service: Service) -> None:
    with client_for(app, VIEWER) as (client, csrf):
        response = client.post(f"/dashboard/lines/{LINE}/pause", data={"csrf": csrf})
        assert response.status_code == 403
        assert client.get("/dashboard/settings").status_code == 403
    assert not service.is_paused(LINE)


def test_incidents_open_close_and_detail(
    app: FastAPI, service: Service, clock: VirtualClock
) -> None:
    raid(service, clock, 20)  # insults repeat: copy-paste clusters
    with client_for(app, MODERATOR) as (client, csrf):
        listing = client.get("/dashboard/incidents").text
        assert "#1" in listing
        detail = client.get("/dashboard/incidents/1")
        assert detail.status_code == 200
        page = parse(detail.text)
        assert "Copier-coller" in page.text
        client.post("/dashboard/incidents/1/close", data={"csrf": csrf})
        client.post(f"/dashboard/lines/{LINE}/incident", data={"csrf": csrf, "note": "forum"})
        api = client.get("/api/incidents").json()
    assert [i["closed_at"] is None for i in api] == [True, False]
    assert api[0]["opened_by"] == f"operator:web:{MODERATOR}"
    detail_api = client_detail(app, MODERATOR, 1)
    assert 0 < int(detail_api["texts"]) <= 20  # the texts after it opened
    assert detail_api["top_senders"]
    assert any(c["senders"] >= 2 for c in detail_api["clusters"])


def client_detail(app: FastAPI, who: str, incident_id: int) -> dict[str, object]:
    with client_for(app, who) as (client, _):
        return dict(client.get(f"/api/incidents/{incident_id}").json())


def test_held_replies_released_or_cancelled_by_hand(app: FastAPI, service: Service) -> None:
    operations.open_incident(service, LINE, "test")
    held = [receive(service, sms(sender=fr_mobile(50 + i), body=f"Salut {i}")) for i in range(2)]
    assert all(r.decision.action is Action.HOLD for r in held)
    with client_for(app, MODERATOR) as (client, csrf):
        controls = client.get("/dashboard/controls").text
        assert controls.count("/release") == 2
        client.post(f"/dashboard/held/{held[0].reply_id}/release", data={"csrf": csrf})
        client.post(f"/dashboard/held/{held[1].reply_id}/cancel", data={"csrf": csrf})
    statuses = {r.id: r.status for r in replies(service)}
    assert statuses[held[0].reply_id] == ReplyStatus.QUEUED
    assert statuses[held[1].reply_id] == ReplyStatus.CANCELLED


def test_reply_editor_changes_the_reply_and_its_cost(app: FastAPI, service: Service) -> None:
    long_reply = service.settings.lines[0].reply
    short = "Elle a dit non. Non, c'est non. Merci de ne pas insister."
    with client_for(app, ADMIN) as (client, csrf):
        preview = client.get("/api/reply-preview", params={"text": long_reply + " ’"}).json()
        assert preview["encoding"] == "UCS-2"
        assert preview["gsm7_rewrite"]
        small = client.get("/api/reply-preview", params={"text": short}).json()
        assert (small["segments"], small["encoding"]) == (1, "GSM-7")
        assert small["cost_per_1000_senders"] == pytest.approx(76.27)
        client.post(f"/dashboard/lines/{LINE}/reply", data={"csrf": csrf, "text": short})
        assert service.settings.lines[0].reply == short
        page = client.get("/dashboard/settings").text
        assert "configuration" in page  # says it differs from the file
    receipt = receive(service, sms(sender=GENUINE))
    reply = next(r for r in replies(service) if r.id == receipt.reply_id)
    assert (reply.body, reply.segments) == (short, segment(short).segments)
    assert "reply_edit" in audit_actions(service)


def test_caps_and_donations(app: FastAPI, service: Service) -> None:
    with client_for(app, ADMIN) as (client, csrf):
        client.post("/dashboard/caps", data={"csrf": csrf, "daily_cap": "5", "total": "100"})
        client.post("/dashboard/donations", data={"csrf": csrf, "euros": "25,50", "note": "fête"})
        data = client.get("/api/overview").json()
    assert service.caps.daily == 5_000_000
    assert data["pot_micros"] == 125_500_000
    assert audit_actions(service)[-2:] == ["caps_edit", "donation"]


def test_overrides_reach_another_process(app: FastAPI, service: Service) -> None:
    """Another web process (another LiveSettings) sees an edit at its next refresh."""
    from antirelou.web.overrides import LiveSettings

    other = Service(service.settings, service.engine, service.clock)
    other_live = LiveSettings(other)
    with client_for(app, ADMIN) as (client, csrf):
        client.post("/dashboard/caps", data={"csrf": csrf, "daily_cap": "7", "total": "100"})
    other_live.refresh()
    assert other.caps.daily == 7_000_000


def test_admins_manage_accounts(app: FastAPI, service: Service) -> None:
    from antirelou.web.accounts import Role, find_user

    with client_for(app, ADMIN) as (client, csrf):
        response = client.post(
            "/dashboard/users",
            data={"csrf": csrf, "email": "new@example.org", "role": "viewer", "password": "x" * 12},
        )
        assert "new@example.org" in response.text
        with service.engine.connect() as conn:
            user = find_user(conn, "new@example.org")
        assert user is not None
        form = {"csrf": csrf, "role": "moderator", "disabled": "0"}
        client.post(f"/dashboard/users/{user.id}", data=form)
        with service.engine.connect() as conn:
            changed = find_user(conn, "new@example.org")
        assert changed is not None
        assert changed.role is Role.MODERATOR
        me = find_admin(service)
        refused = client.post(f"/dashboard/users/{me}", data={**form, "role": "viewer"})
        assert refused.status_code == 400  # no admin demotes herself by mistake
    assert audit_actions(service)[-2:] == ["user_add", "user_change"]


def find_admin(service: Service) -> int:
    from antirelou.web.accounts import find_user

    with service.engine.connect() as conn:
        user = find_user(conn, ADMIN)
    assert user is not None
    return user.id


def test_api_tokens_page_shows_a_token_once(app: FastAPI) -> None:
    with client_for(app, VIEWER) as (client, csrf):
        form = {"csrf": csrf, "name": "script", "password": PASSWORD}
        page = client.post("/dashboard/tokens", data=form).text
        token = re.search(r'id="new-token">([^<]+)<', page)
        assert token
        listing = client.get("/dashboard/tokens").text
        assert token.group(1) not in listing
    with client_for(app) as (anonymous, _):
        headers = {"Authorization": f"Bearer {token.group(1)}"}
        assert anonymous.get("/api/overview", headers=headers).status_code == 200
        assert (
            anonymous.post(f"/api/lines/{LINE}/pause", json={}, headers=headers).status_code == 403
        )


def test_language_switch(app: FastAPI) -> None:
    with client_for(app, VIEWER) as (client, csrf):
        assert "Vue d'ensemble" in parse(client.get("/dashboard").text).text
        client.post("/dashboard/language", data={"csrf": csrf, "language": "en"})
        assert "Overview" in parse(client.get("/dashboard").text).text


def test_every_template_string_has_its_french() -> None:
    keys: set[str] = set()
    for path in TEMPLATES.glob("*.html"):
        keys |= set(re.findall(r"""\bt\("([^"]+)"\)""", path.read_text()))
        keys |= set(re.findall(r"""\bt\('([^']+)'\)""", path.read_text()))
    missing = sorted(k for k in keys if k not in FR)
    assert missing == []


def test_evidence_export_is_a_download_and_audited(app: FastAPI, service: Service) -> None:
    receipt = receive(service, sms(sender=GENUINE, body="Salut"))
    with client_for(app, MODERATOR) as (client, csrf):
        response = client.post(
            f"/dashboard/senders/{receipt.message_id}/export", data={"csrf": csrf}
        )
    assert response.headers["content-disposition"].startswith("attachment")
    bundle = json.loads(response.text)
    assert bundle["texts"][0]["body"] == "Salut"
    assert len(bundle["texts"][0]["raw_sha256"]) == 64
    assert "evidence_export" in audit_actions(service)


def test_an_id_too_large_for_the_database_is_a_400_not_a_crash(app: FastAPI) -> None:
    huge = 2**64
    with client_for(app, MODERATOR) as (client, csrf):
        for path in (f"/dashboard/senders/{huge}", f"/dashboard/incidents/{huge}"):
            assert client.get(path).status_code == 400
        closed = client.post(f"/dashboard/incidents/{huge}/close", data={"csrf": csrf})
        assert closed.status_code == 400


def test_english_keeps_a_whole_sentence_with_a_colon_and_shortens_codes() -> None:
    english, french = translator("en"), translator("fr")
    assert english("Too many failed attempts: wait 15 minutes.") == (
        "Too many failed attempts: wait 15 minutes."
    )
    assert english("status:sent") == "sent"
    assert english("reason:some_new_code") == "some new code"
    assert french("reason:some_new_code") == "some_new_code"
    assert french("Too many failed attempts: wait 15 minutes.").startswith("Trop d'essais")
