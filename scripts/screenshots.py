"""Screenshots of the dashboard's main pages for docs/dashboard.md. Re-run at will:

    .venv/bin/python scripts/screenshots.py [--out docs/img]

It builds a throwaway SQLite database with a believable day and a raid, serves the app on a
free loopback port and drives Debian's headless Chromium (/usr/bin/chromium) through it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, ViewportSize, sync_playwright  # noqa: E402
from tests.dashboard_kit import PASSWORD, dashboard_app  # noqa: E402
from tests.demo_data import ordinary_day, raid  # noqa: E402
from tests.helpers import make_settings  # noqa: E402
from tests.live_server import CHROMIUM, CHROMIUM_ARGS, free_port, serving  # noqa: E402

from antirelou import migrate  # noqa: E402
from antirelou.clock import VirtualClock  # noqa: E402
from antirelou.db import make_engine  # noqa: E402
from antirelou.service import Service  # noqa: E402
from antirelou.web.accounts import Role, create_user  # noqa: E402

DESKTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}


def demo_service(folder: Path, port: int) -> Service:
    url = f"sqlite:///{folder / 'demo.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    now = datetime.now(UTC).replace(microsecond=0)
    clock = VirtualClock(now - timedelta(hours=3))
    settings = make_settings(url, public_url=f"http://127.0.0.1:{port}")
    service = Service(settings, engine, clock)
    service.sync_lines()
    ordinary_day(service, clock, senders=120)
    raid(service, clock, texts=40)
    ordinary_day(service, clock, senders=4, seed=99)  # genuine senders, held meanwhile
    create_user(service, "alice@example.org", PASSWORD, Role.ADMIN, "screenshots")
    create_user(service, "nour@example.org", PASSWORD, Role.MODERATOR, "screenshots")
    return service


def log_in(page: Page, base: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=email]", "alice@example.org")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(base + "/dashboard")


def shoot(page: Page, base: str, path: str, out: Path, full: bool = False, click: str = "") -> None:
    """`click`: a selector to click before the shot (a folded form to show open)."""
    page.goto(base + path)
    page.wait_for_load_state("networkidle")
    if click:
        page.click(click)
    page.screenshot(path=str(out), full_page=full)
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        service = demo_service(Path(folder), port)
        with serving(dashboard_app(service), port) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            desktop = browser.new_page(viewport=DESKTOP)
            log_in(desktop, base)
            shoot(desktop, base, "/dashboard", out / "overview.png")
            desktop.goto(base + "/dashboard/messages")
            shoot(desktop, base, "/dashboard/messages", out / "messages.png")
            shoot(desktop, base, "/dashboard/incidents/1", out / "incident.png", full=True)
            shoot(desktop, base, "/dashboard/controls", out / "controls.png")
            shoot(desktop, base, "/dashboard/settings", out / "settings.png", full=True,
                  click="details.set-password summary")  # fmt: skip
            phone = browser.new_page(viewport=PHONE, device_scale_factor=2)
            log_in(phone, base)
            shoot(phone, base, "/dashboard", out / "overview-phone.png")
            shoot(phone, base, "/why/en", out / "why-phone.png")
            shoot(desktop, base, "/login", out / "login.png")
            browser.close()
        service.dispose()


if __name__ == "__main__":
    main()
