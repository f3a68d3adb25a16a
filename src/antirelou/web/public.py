"""Public pages, no login: /why (French and English) and the optional public counter.

A raid may hammer these pages, since the reply links to /why. They cost nothing per hit:
/why is rendered once per language and served from memory; the counter is recomputed at
most once per TTL by one thread while every other request gets the figures in memory.
Both say Cache-Control: public, so a proxy or CDN in front can absorb a flood too.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from antirelou import models
from antirelou.outbox import ReplyStatus
from antirelou.service import Service
from antirelou.web.reads import reader
from antirelou.web.render import SECURITY_HEADERS, env

router = APIRouter(include_in_schema=False)
COUNTER_TTL = 60.0
LANGS = ("fr", "en")
ANSWERED = (ReplyStatus.SENT, ReplyStatus.DELIVERED, ReplyStatus.UNDELIVERED)


@dataclass
class PublicCache:
    contact: str = ""
    counter_enabled: bool = True
    window_days: int = 0  # a sender is answered once per window (the lines' shortest)
    pages: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    counter: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    counted_at: float = -COUNTER_TTL
    lock: threading.Lock = field(default_factory=threading.Lock)

    def why(self, lang: str) -> tuple[bytes, str]:
        if lang not in self.pages:
            html = env.get_template("why.html").render(
                lang=lang,
                contact=self.contact,
                counter=self.counter_enabled,
                window_days=self.window_days,
            )
            body = html.encode()
            self.pages[lang] = (body, _etag(body))
        return self.pages[lang]

    def fresh(self) -> bool:
        return bool(self.counter) and time.monotonic() - self.counted_at < COUNTER_TTL

    def counts(self, service: Service, lang: str) -> tuple[bytes, str]:
        """The counter page; recounted by one thread at a time, at most once per TTL.
        While one thread recounts, the others serve the previous figures."""
        if self.fresh():
            return self.counter[lang]
        if not self.lock.acquire(blocking=not self.counter):
            return self.counter[lang]
        try:
            if not self.fresh():
                self._recount(service)
        finally:
            self.lock.release()
        return self.counter[lang]

    def _recount(self, service: Service) -> None:
        answered, ignored = count_public(service)
        for lang in LANGS:
            html = env.get_template("counter.html").render(
                lang=lang, answered=answered, ignored=ignored, ttl=int(COUNTER_TTL)
            )
            body = html.encode()
            self.counter[lang] = (body, _etag(body))
        self.counted_at = time.monotonic()


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def count_public(service: Service) -> tuple[int, int]:
    """Replies that went out, and texts received during raids that got no reply."""
    r, m = models.replies, models.messages
    with reader(service).connect() as conn:
        answered = conn.execute(select(func.count()).where(r.c.status.in_(ANSWERED)))
        ignored = conn.execute(
            select(func.count()).where(m.c.incident_id.is_not(None), m.c.decision == "none")
        )
        return int(answered.scalar_one()), int(ignored.scalar_one())


def _cached(request: Request, body: bytes, etag: str, max_age: int) -> Response:
    headers = {
        **SECURITY_HEADERS,
        "Cache-Control": f"public, max-age={max_age}",
        "ETag": etag,
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/html; charset=utf-8", headers=headers)


def _cache(request: Request) -> PublicCache:
    cache = request.app.state.dashboard.public
    assert isinstance(cache, PublicCache)
    return cache


@router.get("/why")
@router.get("/why/{lang}")
async def why(request: Request, lang: str = "fr") -> Response:
    if lang not in LANGS:
        raise HTTPException(404)
    body, etag = _cache(request).why(lang)
    return _cached(request, body, etag, 3600)


@router.get("/counter")
@router.get("/counter/{lang}")
async def counter(request: Request, lang: str = "fr") -> Response:
    cache = _cache(request)
    if lang not in LANGS or not cache.counter_enabled:
        raise HTTPException(404)
    service = request.app.state.antirelou.service
    if cache.fresh():
        body, etag = cache.counter[lang]  # the usual case: no thread hop at all
    else:
        body, etag = await run_in_threadpool(cache.counts, service, lang)
    return _cached(request, body, etag, int(COUNTER_TTL))
