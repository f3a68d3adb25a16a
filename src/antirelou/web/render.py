"""Server-rendered pages: one Jinja2 environment, the helpers templates use, safe headers.

Autoescaping is on for every template: texts come from strangers, some of them raiders.
The Content-Security-Policy allows our own scripts only, so even a text that slipped
through escaping could not run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from antirelou.money import MICROS
from antirelou.web.i18n import translator

TEMPLATES = Path(__file__).parent / "templates"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
PRIVATE = {**SECURITY_HEADERS, "Cache-Control": "no-store"}

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def eur(micros: int | None, digits: int = 2) -> str:
    if micros is None:
        return "–"
    return f"{micros / MICROS:,.{digits}f} €".replace(",", "\u202f")


def when(value: datetime | None, zone: Any = None) -> str:
    if value is None:
        return "–"
    local = value.astimezone(zone) if zone is not None else value
    return local.strftime("%Y-%m-%d %H:%M:%S")


def balance_label(balance: Any) -> str:
    """A provider's balance as the Money card shows it (balances.ProviderBalance)."""
    if balance.amount is None:
        return "?"
    return f"{balance.amount:,.2f} {balance.currency or ''}".strip()


env.filters["eur"] = eur
env.filters["balance_label"] = balance_label
env.filters["when"] = when


def page(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    lang: str,
    status: int = 200,
    headers: Mapping[str, str] = PRIVATE,
) -> HTMLResponse:
    """Render a template with the translator and the request at hand."""
    t: Callable[[str], str] = translator(lang)
    html = env.get_template(template).render(request=request, t=t, lang=lang, **context)
    return HTMLResponse(html, status, headers=dict(headers))
