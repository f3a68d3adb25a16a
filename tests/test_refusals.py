"""A forged flood is refused without flooding the logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from antirelou import models
from antirelou.service import Service
from antirelou.web import refusals
from tests.helpers import count


@pytest.fixture(autouse=True)
def fresh_tallies() -> Iterator[None]:
    refusals.reset()
    yield
    refusals.reset()


def forged(client: TestClient, n: int) -> None:
    params = {"MessageSid": f"SM{n:032x}", "From": "+33612345678", "To": "+33939000021"}
    headers = {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
    assert client.post("/webhooks/twilio/sms", data=params, headers=headers).status_code == 403


def test_a_forged_flood_logs_one_line_not_one_per_request(
    client: TestClient, hook_service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="antirelou.web.refused"):
        for n in range(200):
            forged(client, n)
    lines = [r.getMessage() for r in caplog.records if r.name == "antirelou.web.refused"]
    assert lines == ["refused a Twilio request: missing or wrong signature"]
    assert count(hook_service, models.messages) == 0


def test_after_a_minute_one_line_says_how_many_more(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="antirelou.web.refused"):
        refusals.refused("Plivo", "bad signature", now=0.0)
        for second in range(1, 60):
            refusals.refused("Plivo", "bad signature", now=float(second))
        refusals.refused("Plivo", "bad signature", now=61.0)
        refusals.refused("Vonage", "stale timestamp", now=61.0)
    assert [r.getMessage() for r in caplog.records] == [
        "refused a Plivo request: bad signature",
        "refused 60 more Plivo requests in the last 60 s: bad signature",
        "refused a Vonage request: stale timestamp",
    ]
