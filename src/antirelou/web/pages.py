"""The dashboard's pages that only read: overview, messages, sender, incidents, audit log."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from antirelou import models
from antirelou.service import Service
from antirelou.web import feed, incident_views, insights
from antirelou.web.context import show
from antirelou.web.guard import Moderator, Reader, service_of
from antirelou.web.i18n import step_label, translator
from antirelou.web.reads import reader
from antirelou.web.schemas import Clean, DbInt

router = APIRouter(prefix="/dashboard", include_in_schema=False)
POLL_MS = 5000


def series_json(series: insights.Series, lang: str) -> str:
    data = dataclasses.asdict(series)
    data["step_label"] = step_label(series.step_minutes, translator(lang))
    return json.dumps(data)


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, viewer: Reader) -> HTMLResponse:
    service = service_of(request)
    o = await run_in_threadpool(insights.overview, service)
    series = await run_in_threadpool(insights.series, service, "hour")
    poll = request.app.state.dashboard.poll_ms
    return await show(
        request,
        viewer,
        "overview.html",
        o=o,
        span="hour",
        series_json=series_json(series, viewer.user.language),
        poll_ms=poll,
    )


def _day(value: str, zone: Any, end: bool = False) -> datetime | None:
    """A date typed in the form, as the start (or end) of that day in the line's zone."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"not a date: {value}") from None
    start = datetime.combine(day, time(), zone)
    return (start.replace(hour=23, minute=59, second=59) if end else start).astimezone(UTC)


def filters_from(
    q: str, sender: str, decision: str, incident: int | None, before: int | None
) -> feed.Filters:
    return feed.Filters(q.strip(), sender.strip(), decision, incident, before=before)


@router.get("/messages", response_class=HTMLResponse)
async def messages(
    request: Request,
    viewer: Reader,
    q: Clean = "",
    sender: Clean = "",
    decision: Clean = "",
    incident: Annotated[str, Query()] = "",
    since: Clean = "",
    until: Clean = "",
    before: int | None = None,
) -> HTMLResponse:
    service = service_of(request)
    zone = service.settings.lines[0].zone
    f = filters_from(q, sender, decision, int(incident) if incident.isdigit() else None, before)
    f.since, f.until = _day(since, zone), _day(until, zone, end=True)
    page = await run_in_threadpool(feed.search, service, f)
    params = {k: v for k, v in request.query_params.items() if k != "before"}
    next_url = "/dashboard/messages?" + urlencode({**params, "before": page.next_before or ""})
    return await show(
        request,
        viewer,
        "messages.html",
        page=page,
        f=f,
        since_value=since,
        until_value=until,
        next_url=next_url,
        live=not (q or sender or decision or incident or since or until or before),
        poll_ms=request.app.state.dashboard.poll_ms,
    )


@router.get("/senders/{message_id}", response_class=HTMLResponse)
async def sender(request: Request, viewer: Reader, message_id: DbInt) -> HTMLResponse:
    p = await run_in_threadpool(feed.sender_page, service_of(request), message_id)
    if p is None:
        raise HTTPException(404, "no such sender")
    return await show(request, viewer, "sender.html", p=p)


@router.get("/incidents", response_class=HTMLResponse)
async def incidents(request: Request, viewer: Reader) -> HTMLResponse:
    rows = await run_in_threadpool(incident_views.incident_rows, service_of(request))
    return await show(request, viewer, "incidents.html", rows=rows)


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
async def incident(request: Request, viewer: Reader, incident_id: DbInt) -> HTMLResponse:
    d = await run_in_threadpool(incident_views.incident_detail, service_of(request), incident_id)
    if d is None:
        raise HTTPException(404, "no such incident")
    chart = series_json(d.timeline, viewer.user.language)
    return await show(request, viewer, "incident.html", d=d, series_json=chart)


def audit_rows(service: Service, limit: int = 200) -> list[Any]:
    a = models.audit_log
    with reader(service).connect() as conn:
        return list(conn.execute(select(a).order_by(a.c.id.desc()).limit(limit)))


@router.get("/audit", response_class=HTMLResponse)
async def audit(request: Request, viewer: Moderator) -> HTMLResponse:
    rows = await run_in_threadpool(audit_rows, service_of(request))
    return await show(request, viewer, "audit.html", rows=rows)
