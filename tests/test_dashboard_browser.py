"""End to end in headless Chromium (Debian's /usr/bin/chromium): what an operator sees.

The app runs in a real server on a loopback port; texts arrive through receive(), the same
path as a provider's webhook, while the browser watches the overview refresh itself.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from antirelou import migrate, models
from antirelou.balances import BalanceWatch
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.inbound import receive
from antirelou.providers.base import Balance, InboundSms
from antirelou.providers.sandbox import SandboxSender
from antirelou.replay import read_scenario
from antirelou.service import Service
from antirelou.web import devices, ratelimit, totp
from antirelou.web.accounts import find_user
from antirelou.worker import Worker
from tests.dashboard_kit import ADMIN, PASSWORD, VIEWER, add_accounts, dashboard_app
from tests.demo_data import INSULTS
from tests.helpers import LINE, make_settings, sms
from tests.live_server import CHROMIUM, CHROMIUM_ARGS, free_port, serving

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed"),
]
WAIT = 10_000  # ms: the overview polls every 300 ms in these tests


class Live:
    def __init__(self, service: Service, clock: VirtualClock, base: str) -> None:
        self.service, self.clock, self.base = service, clock, base
        self.worker = Worker(service, {"sandbox": SandboxSender()}, deliver_alerts=False)

    def text(self, sender: str, body: str) -> None:
        self.clock.advance(timedelta(seconds=3))
        receive(self.service, sms(sender=sender, body=body))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    clock = VirtualClock(datetime.now(UTC))
    port = free_port()
    settings = make_settings(url, public_url=f"http://127.0.0.1:{port}")
    service = Service(settings, engine, clock)
    service.sync_lines()
    add_accounts(service)
    with serving(dashboard_app(service, poll_ms=300), port) as base:
        yield Live(service, clock, base)
    service.dispose()


@pytest.fixture
def page(browser: object, live: Live) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    tab = context.new_page()
    yield tab
    context.close()


def log_in(page: object, live: Live, email: str = ADMIN) -> None:
    page.goto(live.base + "/login")  # type: ignore[attr-defined]
    page.fill("input[name=email]", email)  # type: ignore[attr-defined]
    page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    page.click("#login-form button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(live.base + "/dashboard")  # type: ignore[attr-defined]


def test_refused_without_logging_in(page: object, live: Live) -> None:
    page.goto(live.base + "/dashboard/messages")  # type: ignore[attr-defined]
    assert page.url.startswith(live.base + "/login")  # type: ignore[attr-defined]
    response = page.request.get(live.base + "/api/overview")  # type: ignore[attr-defined]
    assert response.status == 401
    page.fill("input[name=email]", ADMIN)  # type: ignore[attr-defined]
    page.fill("input[name=password]", "not the password")  # type: ignore[attr-defined]
    page.click("#login-form button[type=submit]")  # type: ignore[attr-defined]
    assert "/login" in page.url  # type: ignore[attr-defined]
    assert page.locator(".flash").inner_text()  # type: ignore[attr-defined]


def test_log_in_with_a_code_from_an_authenticator_app(page: object, live: Live) -> None:
    secret = pyotp.random_base32()
    with live.service.engine.connect() as conn:
        user = find_user(conn, ADMIN)
    assert user is not None
    totp.enable(live.service, user.id, secret, pyotp.TOTP(secret).at(live.clock.now()), "test")
    live.clock.advance(timedelta(minutes=2))  # the enrolment's code is stale now
    page.goto(live.base + "/login")  # type: ignore[attr-defined]
    page.fill("input[name=email]", ADMIN)  # type: ignore[attr-defined]
    page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    page.click("#login-form button[type=submit]")  # type: ignore[attr-defined]
    assert "/login" in page.url  # type: ignore[attr-defined]  # the password alone: refused
    code = pyotp.TOTP(secret).at(live.clock.now())
    page.fill("input[name=email]", ADMIN)  # type: ignore[attr-defined]
    page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    page.fill("input[name=code]", f"{code[:3]} {code[3:]}")  # type: ignore[attr-defined]
    page.click("#login-form button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(live.base + "/dashboard")  # type: ignore[attr-defined]


def test_change_my_password_from_the_menu(page: object, live: Live) -> None:
    log_in(page, live, VIEWER)
    page.click("nav >> text=Mon compte")  # type: ignore[attr-defined]
    page.wait_for_url(live.base + "/dashboard/account")  # type: ignore[attr-defined]
    form = "form[action='/dashboard/account/password']"
    page.fill(f"{form} input[name=current]", PASSWORD)  # type: ignore[attr-defined]
    page.fill(f"{form} input[name=new]", "une phrase de passe toute neuve")  # type: ignore[attr-defined]
    page.fill(f"{form} input[name=repeat]", "une phrase de passe toute neuve")  # type: ignore[attr-defined]
    page.click(f"{form} button")  # type: ignore[attr-defined]
    flash = page.locator(".flash")  # type: ignore[attr-defined]
    playwright.expect(flash).to_contain_text("Mot de passe changé")
    page.goto(live.base + "/dashboard")  # type: ignore[attr-defined]
    assert page.url == live.base + "/dashboard"  # type: ignore[attr-defined]  # still logged in
    with live.service.engine.connect() as conn:
        audit = conn.execute(select(models.audit_log.c.action, models.audit_log.c.actor)).all()
    assert ("user_change", f"web:{VIEWER}") in audit


def test_a_link_from_the_server_lets_a_new_browser_in_during_a_lockout(
    page: object, live: Live
) -> None:
    now = live.clock.now()
    with live.service.engine.begin() as conn:
        for _ in range(ratelimit.PER_ACCOUNT):  # a raid failing logins with her address
            ratelimit.record_failure(conn, ADMIN, "203.0.113.9", now)
        user = find_user(conn, ADMIN)
        assert user is not None
        token = devices.make_link(conn, user.id, now, devices.LINK_LASTS)
    page.goto(live.base + "/login")  # type: ignore[attr-defined]
    page.fill("input[name=email]", ADMIN)  # type: ignore[attr-defined]
    page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    page.click("#login-form button[type=submit]")  # type: ignore[attr-defined]
    flash = page.locator(".flash")  # type: ignore[attr-defined]
    playwright.expect(flash).to_contain_text("15 minutes")  # locked out, right password too
    page.goto(f"{live.base}/login/device?t={token}")  # type: ignore[attr-defined]
    page.click("#device-link-form button")  # type: ignore[attr-defined]
    playwright.expect(flash).to_contain_text(f"This browser is trusted for {ADMIN}")
    log_in(page, live)  # the same form, the same password: in, the lockout notwithstanding


def test_the_providers_balance_follows_what_the_worker_asked(page: object, live: Live) -> None:
    answers = iter([Balance(42.0, "EUR"), Balance(7.5, "EUR")])
    watch = BalanceWatch(live.service, lambda _s, _p: next(answers), frozenset({"sandbox"}))
    watch()
    log_in(page, live)
    amount = page.locator('.provider-balance[data-provider="sandbox"] .amount')  # type: ignore[attr-defined]
    playwright.expect(amount).to_have_text("42.00 EUR")
    live.clock.advance(timedelta(minutes=16))
    watch()
    playwright.expect(amount).to_have_text("7.50 EUR", timeout=WAIT)


def test_overview_changes_as_texts_arrive(page: object, live: Live) -> None:
    log_in(page, live)
    expect = playwright.expect
    expect(page.locator("#texts-today")).to_have_text("0")  # type: ignore[attr-defined]
    live.text("+33612345678", "Salut c'est Marc du bar")
    live.text("+33698765432", "Coucou, Julien du concert")
    live.text("+33612345678", "Tu réponds pas ?")
    expect(page.locator("#texts-today")).to_have_text("3", timeout=WAIT)  # type: ignore[attr-defined]
    expect(page.locator("#new-today")).to_have_text("2", timeout=WAIT)  # type: ignore[attr-defined]
    expect(page.locator("#queued-now")).to_have_text("2", timeout=WAIT)  # type: ignore[attr-defined]
    live.worker.drain()
    expect(page.locator("#sent-today")).to_have_text("2", timeout=WAIT)  # type: ignore[attr-defined]
    expect(page.locator("#refused-today")).to_have_text("1", timeout=WAIT)  # type: ignore[attr-defined]
    assert page.locator("#chart svg rect.bar").count() >= 1  # type: ignore[attr-defined]


def raid_scenario(folder: Path, start: datetime, count: int) -> Path:
    """A replay file, as `antirelou simulate` writes them: insults from many numbers."""
    path = folder / "raid.jsonl"
    with path.open("w") as out:
        for i in range(count):
            row = {
                "id": f"raid-{i}",
                "at": (start + timedelta(seconds=2 * i)).isoformat(),
                "from": f"+336{41_000_000 + i * 7_919:08d}",
                "to": LINE,
                "body": INSULTS[i % len(INSULTS)],
            }
            out.write(json.dumps(row) + "\n")
    return path


def test_incident_banner_after_a_replayed_raid(page: object, live: Live, tmp_path: Path) -> None:
    log_in(page, live, VIEWER)
    assert page.locator("#incident-banner").count() == 0  # type: ignore[attr-defined]
    scenario = raid_scenario(tmp_path, live.clock.now() + timedelta(seconds=5), 12)
    with scenario.open() as handle:
        for text in read_scenario(handle):
            live.clock.set(text.at)
            receive(
                live.service, InboundSms("sandbox", text.id, text.sender, text.to, text.body, {})
            )
    banner = page.locator("#incident-banner")  # type: ignore[attr-defined]
    playwright.expect(banner).to_be_visible(timeout=WAIT)
    assert "expéditeurs hostiles" in banner.inner_text()
    page.click("#incident-banner a")  # type: ignore[attr-defined]
    page.wait_for_url(live.base + "/dashboard/incidents/1")  # type: ignore[attr-defined]
    blurred = page.locator(".blurred").first  # type: ignore[attr-defined]
    playwright.expect(blurred).not_to_have_class("body blurred revealed")
    blurred.click()
    playwright.expect(blurred).to_have_class("body blurred revealed")


def test_pause_a_line_and_see_replies_stop(page: object, live: Live) -> None:
    log_in(page, live)
    live.text("+33612345678", "Salut c'est Marc")
    live.worker.drain()
    page.goto(live.base + "/dashboard/controls")  # type: ignore[attr-defined]
    page.fill('tr[data-line="+33939000021"] input[name=reason]', "raid du forum")  # type: ignore[attr-defined]
    page.click('tr[data-line="+33939000021"] button.pause')  # type: ignore[attr-defined]
    state = page.locator('tr[data-line="+33939000021"] td.state')  # type: ignore[attr-defined]
    playwright.expect(state).to_contain_text("en pause")
    live.text("+33698765432", "Coucou c'est Julien")
    assert live.worker.drain() == 0  # nothing goes out
    page.goto(live.base + "/dashboard")  # type: ignore[attr-defined]
    expect = playwright.expect
    expect(page.locator("#texts-today")).to_have_text("2", timeout=WAIT)  # type: ignore[attr-defined]
    expect(page.locator("#sent-today")).to_have_text("1")  # type: ignore[attr-defined]
    expect(page.locator('#lines li[data-line="+33939000021"] .state')).to_have_text("en pause")  # type: ignore[attr-defined]
    page.goto(live.base + "/dashboard/messages")  # type: ignore[attr-defined]
    newest = page.locator("article.msg").first  # type: ignore[attr-defined]
    expect(newest).to_contain_text("ligne en pause")
    with live.service.engine.connect() as conn:
        audit = conn.execute(select(models.audit_log.c.action, models.audit_log.c.actor)).all()
    assert ("pause", f"web:{ADMIN}") in audit


def test_edit_the_reply_and_see_the_segment_count_change(page: object, live: Live) -> None:
    log_in(page, live)
    page.goto(live.base + "/dashboard/settings")  # type: ignore[attr-defined]
    box = page.locator(".editor").first  # type: ignore[attr-defined]
    expect = playwright.expect
    expect(box.locator(".p-segments")).to_have_text("1")
    longer = "Bonjour. " + "Quand une femme dit non, c'est non. " * 6
    box.locator("textarea").fill(longer)
    expect(box.locator(".p-segments")).to_have_text("2", timeout=WAIT)
    expect(box.locator(".p-encoding")).to_have_text("GSM-7")
    box.locator("textarea").fill("Bonjour. Elle t’a dit non.")  # a typographic apostrophe
    expect(box.locator(".p-encoding")).to_have_text("UCS-2", timeout=WAIT)
    expect(box.locator(".p-rewrite")).to_have_text("Bonjour. Elle t'a dit non.")
    box.locator(".use-rewrite").click()
    expect(box.locator(".p-encoding")).to_have_text("GSM-7", timeout=WAIT)
    box.locator(".save-reply").click()
    expect(page.locator(".flash")).to_be_visible()  # type: ignore[attr-defined]
    assert live.service.settings.lines[0].reply == "Bonjour. Elle t'a dit non."


def test_the_feed_says_when_new_texts_arrive(page: object, live: Live) -> None:
    live.text("+33612345678", "Salut c'est Marc")
    log_in(page, live)
    page.goto(live.base + "/dashboard/messages")  # type: ignore[attr-defined]
    notice = page.locator("#new-texts")  # type: ignore[attr-defined]
    playwright.expect(notice).to_be_hidden()
    live.text("+33698765432", "Coucou c'est Julien")
    playwright.expect(notice).to_be_visible(timeout=WAIT)
    notice.locator("a").click()
    playwright.expect(page.locator("article.msg")).to_have_count(2)  # type: ignore[attr-defined]


def test_usable_on_a_phone(browser: object, live: Live) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})  # type: ignore[attr-defined]
    phone = context.new_page()
    log_in(phone, live)
    for path in ("/dashboard", "/dashboard/messages", "/dashboard/controls", "/why"):
        phone.goto(live.base + path)
        wide = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, (path, wide)
    context.close()
