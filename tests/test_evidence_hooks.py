"""What the service's own paths write to the chain (through evidence.hooks)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from antirelou.clock import VirtualClock
from antirelou.evidence import hooks
from antirelou.evidence.tables import evidence_records
from antirelou.evidence.verify import verify_database
from antirelou.inbound import receive
from antirelou.outbox import ClaimedReply
from antirelou.service import Service
from antirelou.voice import CallDecision, IncomingCall
from tests.evidence_kit import evidence_service, open_incident
from tests.helpers import LINE, sms

r = evidence_records


@pytest.fixture
def ev(database_url: str, clock: VirtualClock, tmp_path: Path) -> Iterator[Service]:
    service = evidence_service(database_url, clock, tmp_path)
    yield service
    service.dispose()


def records(service: Service) -> list[tuple[str, str, dict[str, object]]]:
    with service.engine.connect() as conn:
        rows = conn.execute(select(r.c.kind, r.c.ref, r.c.content).order_by(r.c.seq))
        return [(row.kind, row.ref, json.loads(row.content)) for row in rows]


def test_receive_writes_an_inbound_record(ev: Service) -> None:
    """The one entry point records every text in its own transaction ."""
    message = sms(sender="+33612345678", body="Salut, tu te souviens de moi ?")
    receipt = receive(ev, message)
    ((kind, ref, content),) = records(ev)
    assert (kind, ref) == ("inbound", f"message:{receipt.message_id}")
    assert content["body"] == message.body
    assert content["provider_id"] == message.provider_id
    assert content["decision"] == receipt.decision.action.value
    assert receive(ev, message).duplicate
    assert len(records(ev)) == 1  # a provider's retry adds nothing


def test_each_kind_of_fact_is_recorded(ev: Service) -> None:
    now = ev.clock.now()
    incident = open_incident(ev)
    reply = ClaimedReply(7, LINE, "+33612345678", "Bonjour.", 1, False, now, 152540, "2017-10-27")
    call = IncomingCall("twilio", "CA1", "+33612345678", LINE, {"CallSid": "CA1"})
    with ev.engine.begin() as conn:
        hooks.reply_sent(conn, reply, "SM42", 152540, now)
        hooks.call(conn, call, 3, CallDecision(False, ("incident_open",)), incident, 0, now)
        hooks.operator_action(conn, 9, "cli:alice", "pause", LINE, {"reason": "raid"}, now)
    kinds = {kind: (ref, content) for kind, ref, content in records(ev)}
    assert kinds["incident_opened"][0] == f"incident:{incident}"
    assert kinds["reply"] == ("reply:7", {
        "reply": 7, "line": LINE, "to": "+33612345678", "body": "Bonjour.",
        "provider_message_id": "SM42", "sent_at": "2017-10-27T14:00:00.000000Z",
        "cost_micros": 152540, "attempts": 1,
    })  # fmt: skip
    assert kinds["call"][1]["answered"] is False
    assert kinds["operator_action"][1]["details"] == {"reason": "raid"}
    assert verify_database(ev).ok
