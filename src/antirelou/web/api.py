"""The JSON API, read side: the same data as the pages, for scripts and the live overview.

Authenticated with a bearer API token (`antirelou tokens create EMAIL`) or, for the
dashboard's own scripts, the session cookie. Phone numbers are masked for viewers here too.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from antirelou.encoding import Encoding, gsm7_rewrite, segment
from antirelou.web import actions, feed, incident_views, insights, overrides, pages
from antirelou.web import schemas as s
from antirelou.web.guard import Moderator, Reader, Viewer, service_of
from antirelou.web.i18n import step_label, translator
from antirelou.web.render import balance_label, eur, when

router = APIRouter(prefix="/api", tags=["dashboard"], responses=s.errors(400, 401))
Span = Literal["hour", "day", "week"]


def series_out(series: insights.Series, lang: str) -> s.SeriesOut:
    label = step_label(series.step_minutes, translator(lang))
    return s.SeriesOut(step_label=label, **dataclasses.asdict(series))


def incident_out(viewer: Viewer, b: insights.IncidentBrief, zone: Any) -> s.IncidentBriefOut:
    t = translator(viewer.user.language)
    signals = ", ".join(t(x) for x in b.signals)
    text = (
        f"{t('Raid in progress')} · {t('incident')} #{b.id} {t('on')} {viewer.show(b.line)} "
        f"{t('since')} {when(b.opened_at, zone)} · {t('signals')}: {signals}"
    )
    return s.IncidentBriefOut(
        id=b.id,
        line=viewer.show(b.line),
        opened_at=b.opened_at,
        opened_by=b.opened_by,
        signals=b.signals,
        text=text,
    )


def overview_out(
    viewer: Viewer, o: insights.Overview, series: insights.Series, zone: Any
) -> s.OverviewOut:
    t = translator(viewer.user.language)
    lines = [
        s.LineOut(
            number=line.number,  # the decoy line is public; senders are what is masked
            provider=line.provider,
            paused=line.paused,
            paused_reason=line.paused_reason,
            state_label=t("paused") if line.paused else t("answering"),
            incident_id=line.incident.id if line.incident else None,
        )
        for line in o.lines
    ]
    spent = o.spent_today + o.reserved_today
    days = t("no spending yet") if o.days_left is None else f"{o.days_left:.1f}"
    return s.OverviewOut(
        now=o.now,
        day=o.day,
        texts_today=o.texts_today,
        new_senders_today=o.new_senders_today,
        replies_sent_today=o.replies_sent_today,
        replied_today=o.replied_today,
        held_today=o.held_today,
        refused_today=o.refused_today,
        held_now=o.held_now,
        queued_now=o.queued_now,
        spent_today_micros=spent,
        spent_today_label=eur(spent),
        daily_cap_micros=o.daily_cap,
        pot_micros=o.pot,
        pot_left_micros=o.pot_left,
        pot_left_label=eur(o.pot_left),
        days_left=o.days_left,
        days_left_label=days,
        provider_balances=[
            s.ProviderBalanceOut(
                provider=b.provider,
                amount=b.amount,
                currency=b.currency,
                amount_label=balance_label(b),
                asked_at=b.asked_at,
                error=b.error,
            )
            for b in o.provider_balances
        ],
        lines=lines,
        incidents=[incident_out(viewer, b, zone) for b in o.incidents],
        series=series_out(series, viewer.user.language),
    )


@router.get("/overview", response_model=s.OverviewOut)
async def overview(request: Request, viewer: Reader, span: Span = "hour") -> s.OverviewOut:
    """Today's figures, money, lines, open incidents and the traffic chart."""
    service = service_of(request)
    o = await run_in_threadpool(insights.overview, service)
    series = await run_in_threadpool(insights.series, service, span)
    return overview_out(viewer, o, series, service.settings.lines[0].zone)


@router.get("/series", response_model=s.SeriesOut)
async def series(request: Request, viewer: Reader, span: Span = "hour") -> s.SeriesOut:
    """Texts and new senders per step (minute, quarter hour or hour)."""
    data = await run_in_threadpool(insights.series, service_of(request), span)
    return series_out(data, viewer.user.language)


def message_out(viewer: Viewer, row: feed.MessageRow) -> s.MessageOut:
    data = dataclasses.asdict(row)
    data["sender"] = viewer.show(row.sender)
    return s.MessageOut(**data)


@router.get("/messages", response_model=s.MessagesOut)
async def messages(
    request: Request,
    viewer: Reader,
    q: s.Clean = "",
    sender: s.Clean = "",
    decision: s.Clean = "",
    incident: s.DbInt | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: s.DbInt | None = None,
    limit: int = feed.PAGE,
) -> s.MessagesOut:
    """Newest first; free-text search covers the last 2 days unless `since` is given."""
    f = pages.filters_from(q, sender, decision, incident, before)
    f.since, f.until, f.limit = since, until, max(1, min(limit, 500))
    page = await run_in_threadpool(feed.search, service_of(request), f)
    return s.MessagesOut(
        messages=[message_out(viewer, row) for row in page.rows],
        next_before=page.next_before,
        searched_since=page.searched_since,
    )


@router.get("/messages/{message_id}", response_model=s.MessageOut, responses=s.errors(404))
async def message(request: Request, viewer: Reader, message_id: s.DbInt) -> s.MessageOut:
    row = await run_in_threadpool(feed.message, service_of(request), message_id)
    if row is None:
        raise HTTPException(404, "no such message")
    return message_out(viewer, row)


@router.get("/senders/{message_id}", response_model=s.SenderOut, responses=s.errors(404))
async def sender(request: Request, viewer: Reader, message_id: s.DbInt) -> s.SenderOut:
    """The sender of message `message_id`: state, history and replies."""
    p = await run_in_threadpool(feed.sender_page, service_of(request), message_id)
    if p is None:
        raise HTTPException(404, "no such sender")
    data = dataclasses.asdict(p)
    data["line"], data["number"] = viewer.show(p.line), viewer.show(p.number)
    data["messages"] = [message_out(viewer, row) for row in p.messages]
    data.pop("message_id")
    return s.SenderOut(**data)


def incident_row_out(viewer: Viewer, row: incident_views.IncidentRow) -> dict[str, Any]:
    b = row.brief
    return {
        "id": b.id,
        "line": viewer.show(b.line),
        "opened_at": b.opened_at,
        "opened_by": b.opened_by,
        "closed_at": row.closed_at,
        "closed_by": row.closed_by,
        "signals": b.signals,
        "figures": b.figures,
        "legal_hold": row.legal_hold,
        "texts": row.texts,
    }


@router.get("/incidents", response_model=list[s.IncidentOut])
async def incidents(request: Request, viewer: Reader) -> list[s.IncidentOut]:
    rows = await run_in_threadpool(incident_views.incident_rows, service_of(request))
    return [s.IncidentOut(**incident_row_out(viewer, row)) for row in rows]


@router.get("/incidents/{incident_id}", response_model=s.IncidentDetailOut, responses=s.errors(404))
async def incident(request: Request, viewer: Reader, incident_id: s.DbInt) -> s.IncidentDetailOut:
    d = await run_in_threadpool(incident_views.incident_detail, service_of(request), incident_id)
    if d is None:
        raise HTTPException(404, "no such incident")
    return s.IncidentDetailOut(
        **incident_row_out(viewer, d.row),
        timeline=series_out(d.timeline, viewer.user.language),
        top_senders=[
            s.TopSenderOut(message_id=mid, sender=viewer.show(n), texts=c)
            for mid, n, c in d.top_senders
        ],
        clusters=[s.ClusterOut(**dataclasses.asdict(c)) for c in d.clusters],
        held=d.held,
        decisions=d.decisions,
    )


@router.get("/held", response_model=list[s.HeldOut])
async def held(request: Request, viewer: Reader) -> list[s.HeldOut]:
    """Replies held during incidents, oldest first (100 at most)."""
    rows = await run_in_threadpool(actions.held_replies, service_of(request))
    return [
        s.HeldOut(
            id=r.id,
            line=r.line,
            recipient=viewer.show(r.recipient),
            held_at=r.held_at,
            message_id=r.message_id,
        )
        for r in rows
    ]


@router.get("/reply-preview", response_model=s.PreviewOut)
async def reply_preview(request: Request, viewer: Reader, text: s.Clean = "") -> s.PreviewOut:
    """What a reply would cost: encoding, segments, per reply and per 1,000 senders."""
    text = text[: overrides.MAX_REPLY]
    settings = service_of(request).settings
    price = settings.pricing.outbound_segment
    measured = segment(text)
    rewrite = gsm7_rewrite(text) if measured.encoding is Encoding.UCS2 else None
    t = translator(viewer.user.language)
    return s.PreviewOut(
        encoding=measured.encoding.value,
        units=measured.units,
        segments=measured.segments,
        per_segment=measured.per_segment,
        offending=list(measured.offending),
        offending_label=t("UCS-2 because of"),
        cost_per_reply=round(measured.segments * price, 6),
        cost_per_1000_senders=round(measured.segments * price * 1000, 4),
        currency=settings.pricing.currency,
        gsm7_rewrite=rewrite,
        gsm7_segments=segment(rewrite).segments if rewrite is not None else None,
    )


@router.get("/audit", response_model=list[s.AuditOut], responses=s.errors(403))
async def audit(request: Request, viewer: Moderator) -> list[s.AuditOut]:
    """The last 200 operator actions, newest first."""
    rows = await run_in_threadpool(pages.audit_rows, service_of(request))
    return [s.AuditOut.model_validate(dict(row._mapping)) for row in rows]
