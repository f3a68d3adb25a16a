"""The worker against a fake Twilio over real HTTP: once, retried, never twice."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest

from antirelou import alerts, models, operations, outbox
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.inbound import receive
from antirelou.outbox import ReplyStatus
from antirelou.providers.base import OutgoingSms, SendResult
from antirelou.providers.registry import build_senders
from antirelou.providers.sandbox import SandboxSender
from antirelou.service import Service
from antirelou.worker import Worker
from tests.fakes.twilio_api import FakeTwilio
from tests.helpers import LINE, alert_payloads, count, counter, make_settings, replies, sms

SENDER = "+33612345678"


@contextmanager
def service_for(database_url: str, clock: VirtualClock, **overrides: Any) -> Iterator[Service]:
    """A service on `make_settings(database_url, **overrides)`, its lines in the database."""
    service = Service(make_settings(database_url, **overrides), make_engine(database_url), clock)
    service.sync_lines()
    try:
        yield service
    finally:
        service.dispose()


def twilio_of(fake: FakeTwilio, **extra: object) -> dict[str, object]:
    """The [twilio] settings that point at the fake API."""
    return {
        "account_sid": fake.account_sid,
        "auth_token": fake.auth_token,
        "api_base_url": fake.base_url,
        **extra,
    }


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(hang_seconds=1.5) as running:
        yield running


@pytest.fixture
def twilio_service(database_url: str, clock: VirtualClock, fake: FakeTwilio) -> Iterator[Service]:
    with service_for(
        database_url,
        clock,
        lines=[{"number": LINE, "provider": "twilio"}],
        twilio=twilio_of(fake, timeout=0.5),
        worker={"backoff": "1s", "lease": "30s", "max_attempts": 5},
    ) as service:
        yield service


_open: list[Worker] = []


@pytest.fixture(autouse=True)
def _close_workers() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def make_worker(service: Service, owner: str = "") -> Worker:
    worker = Worker(service, build_senders(service.settings), owner=owner)
    _open.append(worker)
    return worker


def drain_with_time(
    service: Service, clock: VirtualClock, worker: Worker, rounds: int = 12
) -> None:
    """Run the worker, letting virtual time pass so backoffs elapse."""
    for _ in range(rounds):
        worker.run_once()
        clock.advance(timedelta(seconds=70))


def test_reply_reaches_twilio_with_the_right_parameters(
    twilio_service: Service, fake: FakeTwilio
) -> None:
    receive(twilio_service, sms(sender=SENDER))
    assert make_worker(twilio_service).drain() == 1
    assert fake.requests == [
        {
            "To": SENDER,
            "From": LINE,
            "Body": twilio_service.settings.lines[0].reply,
            "StatusCallback": "https://decoy.example.org/webhooks/twilio/status",
        }
    ]
    reply = replies(twilio_service)[0]
    assert reply.status == ReplyStatus.SENT
    assert reply.provider_message_id == fake.messages[0]["sid"]
    assert counter(twilio_service, "day:2017-10-27") == (76_270, 0)
    assert count(twilio_service, models.ledger, models.ledger.c.kind == "reply") == 1


@pytest.mark.parametrize("parallel", [1, 3])
def test_provider_calls_run_parallel_sends_at_a_time(
    database_url: str, clock: VirtualClock, fake: FakeTwilio, parallel: int
) -> None:
    """A real API takes a few hundred milliseconds to answer: the worker keeps
    `parallel_sends` calls in flight, never more, and still sends each reply once."""
    fake.latency = 0.4
    with service_for(
        database_url,
        clock,
        lines=[{"number": LINE, "provider": "twilio"}],
        twilio=twilio_of(fake),
        worker={"parallel_sends": parallel},
    ) as service:
        senders = [f"+3361{i}345678" for i in range(6)]  # not one block: no raid shape
        for number in senders:
            receive(service, sms(sender=number))
        assert make_worker(service).drain() == 6
        assert fake.most_in_flight == parallel
        assert sorted(m["to"] for m in fake.messages) == senders
        assert {r.status for r in replies(service)} == {ReplyStatus.SENT}


def test_a_failing_reply_does_not_stop_the_others_of_its_round(
    twilio_service: Service, fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One reply's handling raising (a database error, say) leaves the round's other
    replies sent; the error still reaches the round, which logs it."""
    for i in range(4):
        receive(twilio_service, sms(sender=f"+3361{i}345678"))
    worker = make_worker(twilio_service)
    handle = worker._handle

    def flaky(reply: outbox.ClaimedReply, claimed_at: datetime) -> None:
        if reply.recipient == "+33611345678":
            raise RuntimeError("boom")
        handle(reply, claimed_at)

    monkeypatch.setattr(worker, "_handle", flaky)
    with pytest.raises(RuntimeError, match="boom"):
        worker.run_once()
    sent = sorted(m["to"] for m in fake.messages)
    assert sent == ["+33610345678", "+33612345678", "+33613345678"]


@pytest.mark.parametrize("failure", ["500", "429", "hang"])
def test_transient_failure_is_retried_and_sent_once(
    twilio_service: Service, clock: VirtualClock, fake: FakeTwilio, failure: str
) -> None:
    fake.hang_creates = False
    fake.script(failure, failure)
    receive(twilio_service, sms(sender=SENDER))
    drain_with_time(twilio_service, clock, make_worker(twilio_service))
    assert len(fake.messages) == 1
    reply = replies(twilio_service)[0]
    assert (reply.status, reply.attempts) == (ReplyStatus.SENT, 3)


@pytest.mark.parametrize("failure", ["500_after_create", "hang"])
def test_ambiguous_failure_is_reconciled_not_resent(
    twilio_service: Service, clock: VirtualClock, fake: FakeTwilio, failure: str
) -> None:
    """Twilio took the message but we never saw its answer: look it up, do not resend."""
    fake.hang_creates = True
    fake.script(failure)
    receive(twilio_service, sms(sender=SENDER))
    drain_with_time(twilio_service, clock, make_worker(twilio_service))
    assert len(fake.requests) == 1
    assert len(fake.messages) == 1
    reply = replies(twilio_service)[0]
    assert reply.status == ReplyStatus.SENT
    assert reply.provider_message_id == fake.messages[0]["sid"]


def test_opted_out_answer_is_not_retried_and_marks_the_number(
    twilio_service: Service, clock: VirtualClock, fake: FakeTwilio
) -> None:
    fake.script("21610")
    receive(twilio_service, sms(sender=SENDER))
    drain_with_time(twilio_service, clock, make_worker(twilio_service))
    assert len(fake.requests) == 1
    reply = replies(twilio_service)[0]
    assert (reply.status, reply.error_code) == (ReplyStatus.FAILED, "21610")
    assert counter(twilio_service, "day:2017-10-27") == (0, 0)  # reservation given back
    with twilio_service.engine.connect() as conn:
        assert outbox.is_opted_out(conn, LINE, SENDER)
    assert failure_alerts(twilio_service) == []  # his choice, not a fault: nobody alerted


@pytest.mark.parametrize("code", ["21211", "21614"])
def test_a_number_that_cannot_take_a_text_fails_without_an_alert(
    twilio_service: Service,
    clock: VirtualClock,
    fake: FakeTwilio,
    caplog: pytest.LogCaptureFixture,
    code: str,
) -> None:
    """Not a number, or a landline: about the man who texted, nothing the operators can mend
    (a raid from landlines would otherwise page them every hour)."""
    fake.script(code)
    receive(twilio_service, sms(sender=SENDER))
    drain_with_time(twilio_service, clock, make_worker(twilio_service))
    assert len(fake.requests) == 1
    (reply,) = replies(twilio_service)
    assert (reply.status, reply.error_code) == (ReplyStatus.FAILED, code)
    assert failure_alerts(twilio_service) == []
    assert "not sent" in caplog.text
    assert SENDER not in caplog.text  # numbers masked in the log


def test_a_refusal_about_our_account_is_permanent_and_alerts(
    twilio_service: Service,
    clock: VirtualClock,
    fake: FakeTwilio,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """21408: the account may not text that region, a setting to mend in Twilio's console."""
    fake.script("21408")
    receive(twilio_service, sms(sender=SENDER))
    drain_with_time(twilio_service, clock, make_worker(twilio_service))
    assert len(fake.requests) == 1
    assert replies(twilio_service)[0].status == ReplyStatus.FAILED
    (alert,) = failure_alerts(twilio_service)
    assert (alert["line"], alert["code"]) == (LINE, "21408")
    assert "has not been enabled for the region" in alert["error"]
    assert SENDER not in json.dumps(alert)  # alerts travel by mail: numbers masked
    assert SENDER not in caplog.text  # the log too


def failure_alerts(service: Service) -> list[dict[str, Any]]:
    return alert_payloads(service, "reply_failed")


def test_replies_refused_for_our_credentials_alert_the_operators_once_an_hour(
    database_url: str, clock: VirtualClock, fake: FakeTwilio
) -> None:
    revoked = twilio_of(fake) | {"auth_token": "revoked-token"}
    lines = [{"number": LINE, "provider": "twilio"}]
    with service_for(database_url, clock, lines=lines, twilio=revoked) as service:
        worker = make_worker(service)
        for n, sender in enumerate(("+33612345678", "+33612345679", "+33612345670")):
            clock.advance(timedelta(minutes=20 * n))
            receive(service, sms(sender=sender))
            worker.drain()
        assert {r.status for r in replies(service)} == {ReplyStatus.FAILED}
        found = failure_alerts(service)
    assert len(found) == 2  # 00:00 and 00:20 in one hour, 01:00 in the next
    assert "refused our credentials" in found[0]["error"]
    assert alerts.subject({"kind": "reply_failed", **found[0]}).startswith(
        f"replies on {LINE} are failing: Twilio refused our credentials"
    )


def test_gives_up_after_max_attempts(
    twilio_service: Service, clock: VirtualClock, fake: FakeTwilio
) -> None:
    fake.script(*["429"] * 10)
    receive(twilio_service, sms(sender=SENDER))
    drain_with_time(twilio_service, clock, make_worker(twilio_service), rounds=20)
    reply = replies(twilio_service)[0]
    assert (reply.status, reply.attempts) == (ReplyStatus.FAILED, 5)
    assert not fake.messages


def test_worker_killed_between_claim_and_send_sends_once(
    twilio_service: Service, clock: VirtualClock, fake: FakeTwilio
) -> None:
    receive(twilio_service, sms(sender=SENDER))
    with twilio_service.engine.begin() as conn:  # worker A claims, then dies
        claimed = outbox.claim_due(
            conn, now=clock.now(), owner="A", lease=timedelta(seconds=30), limit=10
        )
    assert len(claimed) == 1
    worker_b = make_worker(twilio_service, owner="B")
    assert worker_b.run_once() == 0  # the lease still holds
    clock.advance(timedelta(seconds=31))
    worker_b.drain()
    assert len(fake.requests) == 1
    assert replies(twilio_service)[0].status == ReplyStatus.SENT


def test_worker_killed_after_send_before_recording_does_not_resend(
    twilio_service: Service, clock: VirtualClock, fake: FakeTwilio
) -> None:
    receive(twilio_service, sms(sender=SENDER))
    with twilio_service.engine.begin() as conn:
        (claimed,) = outbox.claim_due(
            conn, now=clock.now(), owner="A", lease=timedelta(seconds=30), limit=10
        )
    sender = build_senders(twilio_service.settings)["twilio"]
    sender.send(OutgoingSms(claimed.id, claimed.line, claimed.recipient, claimed.body))
    sender.close()  # worker A dies here, before writing down that it sent
    clock.advance(timedelta(seconds=31))
    make_worker(twilio_service, owner="B").drain()
    assert len(fake.requests) == 1
    reply = replies(twilio_service)[0]
    assert reply.status == ReplyStatus.SENT
    assert reply.provider_message_id == fake.messages[0]["sid"]


def test_opt_out_before_a_delayed_reply_cancels_it(database_url: str, clock: VirtualClock) -> None:
    lines = [{"number": LINE, "provider": "sandbox", "reply_delay": "1h"}]
    with service_for(database_url, clock, lines=lines) as service:
        receive(service, sms(sender=SENDER, body="t'es mignonne"))
        worker = make_worker(service)
        assert worker.run_once() == 0  # not due yet: she has an hour to leave
        receive(service, sms(sender=SENDER, body="STOP"))
        clock.advance(timedelta(hours=1))
        worker.drain()
        reply = replies(service)[0]
        assert reply.status == ReplyStatus.CANCELLED
        assert counter(service, "day:2017-10-27") == (0, 0)


def test_paused_line_sends_nothing_until_resumed(service: Service, clock: VirtualClock) -> None:
    receive(service, sms(sender=SENDER))
    with service.engine.begin() as conn:
        conn.execute(models.lines.update().values(paused=True))
    assert make_worker(service).run_once() == 0
    with service.engine.begin() as conn:
        conn.execute(models.lines.update().values(paused=False))
    assert make_worker(service).drain() == 1


def test_a_reply_whose_lease_ran_out_in_the_batch_is_left_to_its_new_owner(
    database_url: str, clock: VirtualClock
) -> None:
    """Two slow calls (20 s each, within the 30 s lease) hold up the third reply of a batch
    until its lease has run out, and a second worker claims it. The first worker must see
    that before calling the provider (the renewal), and each reply goes out once."""
    numbers = ["+33610345678", "+33611345678", "+33612345678"]
    with service_for(database_url, clock, worker={"lease": "30s", "parallel_sends": 1}) as service:
        for number in numbers:
            receive(service, sms(sender=number))
        late = SandboxSender()
        other = Worker(service, {"sandbox": late}, owner="other", deliver_alerts=False)
        _open.append(other)

        class Slow(SandboxSender):
            def send(self, message: OutgoingSms) -> SendResult:
                if not self.sent:
                    clock.advance(timedelta(seconds=20))
                else:  # 35 s after the claim, the third reply's lease has run out
                    clock.advance(timedelta(seconds=15))
                    other.run_once()
                    clock.advance(timedelta(seconds=5))
                return super().send(message)

        slow = Slow()
        first = Worker(service, {"sandbox": slow}, owner="first", deliver_alerts=False)
        _open.append(first)
        first.run_once()
        assert [m.recipient for m in slow.sent] == numbers[:2]
        assert [m.recipient for m in late.sent] == numbers[2:]
        assert {r.status for r in replies(service)} == {ReplyStatus.SENT}


class DuringFirstSend(SandboxSender):
    """A sandbox sender that runs `meanwhile` during its first send: something an operator
    or a man does while a batch is going out."""

    def __init__(self, meanwhile: Callable[[], object]) -> None:
        super().__init__()
        self._meanwhile = meanwhile

    def send(self, message: OutgoingSms) -> SendResult:
        if not self.sent:
            self._meanwhile()
        return super().send(message)


def test_the_kill_switch_stops_replies_already_claimed(
    database_url: str, clock: VirtualClock
) -> None:
    """An operator pauses the line while a batch is going out: what was not yet sent stays
    in the queue, untried, and goes out once the line resumes."""
    numbers = ["+33610345678", "+33611345678", "+33612345678"]
    with service_for(database_url, clock, worker={"parallel_sends": 1}) as service:
        for number in numbers:
            receive(service, sms(sender=number))

        sender = DuringFirstSend(
            lambda: operations.set_paused(service, LINE, True, "alice", "raid")
        )
        worker = Worker(service, {"sandbox": sender}, deliver_alerts=False)
        _open.append(worker)
        assert worker.run_once() == 3
        assert [m.recipient for m in sender.sent] == numbers[:1]
        waiting = [r for r in replies(service) if r.status == ReplyStatus.QUEUED]
        assert [(r.recipient, r.attempts) for r in waiting] == [(n, 0) for n in numbers[1:]]
        assert worker.run_once() == 0, "a paused line's replies are not claimed"

        operations.set_paused(service, LINE, False, "alice")
        worker.drain()
        assert [m.recipient for m in sender.sent] == numbers
        assert {r.status for r in replies(service)} == {ReplyStatus.SENT}


def test_a_stop_that_arrives_while_a_batch_goes_out_cancels_that_reply(
    database_url: str, clock: VirtualClock
) -> None:
    """Asked before each send, not at the claim: a man who texts STOP while the batch with
    his reply is going out is not texted."""
    numbers = ["+33610345678", "+33611345678", "+33612345678"]
    with service_for(database_url, clock, worker={"parallel_sends": 1}) as service:
        for number in numbers:
            receive(service, sms(sender=number))

        sender = DuringFirstSend(lambda: receive(service, sms(sender=numbers[1], body="STOP")))
        worker = Worker(service, {"sandbox": sender}, deliver_alerts=False)
        _open.append(worker)
        assert worker.run_once() == 3
        assert [m.recipient for m in sender.sent] == [numbers[0], numbers[2]]
        statuses = {r.recipient: (r.status, r.error_code) for r in replies(service)}
        assert statuses[numbers[1]] == (ReplyStatus.CANCELLED, "opted_out")


def test_a_hung_provider_call_holds_back_only_its_own_reply(
    database_url: str, clock: VirtualClock
) -> None:
    """The running worker does not wait for its slowest call before claiming more: texts
    that arrive while one call hangs (up to the sender's timeout at a real API) are
    answered meanwhile, and the hung reply is recorded once it comes back."""
    hung_to = "+33611111111"
    calling, release = threading.Event(), threading.Event()

    class HangsForOne(SandboxSender):
        def send(self, message: OutgoingSms) -> SendResult:
            if message.recipient == hung_to:
                calling.set()
                release.wait(30)
            return super().send(message)

    with service_for(database_url, clock, worker={"poll_interval": 0.05}) as service:
        worker = Worker(service, {"sandbox": HangsForOne()}, deliver_alerts=False)
        _open.append(worker)
        stop = threading.Event()
        running = threading.Thread(target=worker.run_forever, args=(stop,))
        receive(service, sms(sender=hung_to))
        running.start()
        try:
            assert calling.wait(10), "the first reply never reached the provider"
            later = ["+33622222222", "+33633333333", "+33644444444"]
            for number in later:
                receive(service, sms(sender=number))
            worker.nudge()
            deadline = time.monotonic() + 10
            while sent_to(service) != set(later) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sent_to(service) == set(later), "replies waited behind a hung call"
        finally:
            release.set()
            stop.set()
            running.join(30)
        assert not running.is_alive()
        assert sent_to(service) == {hung_to, *later}, "stopping records the call in flight"
        assert len(replies(service)) == 4


def test_a_hung_chore_holds_back_no_reply(database_url: str, clock: VirtualClock) -> None:
    """The tick's chores talk to the network (an SMTP server when an incident opens, the
    timestamp authority, a provider's balance) and one may hang up to its timeout: the
    running worker answers texts meanwhile, and stops once the chore comes back."""
    hanging, release = threading.Event(), threading.Event()

    def hangs() -> None:
        hanging.set()
        release.wait(30)

    with service_for(database_url, clock, worker={"poll_interval": 0.05}) as service:
        worker = Worker(service, {"sandbox": SandboxSender()}, chores=[hangs])
        _open.append(worker)
        stop = threading.Event()
        running = threading.Thread(target=worker.run_forever, args=(stop,))
        running.start()
        try:
            assert hanging.wait(10), "the tick never ran its chores"
            receive(service, sms(sender="+33622222222"))
            worker.nudge()
            deadline = time.monotonic() + 10
            while not sent_to(service) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sent_to(service) == {"+33622222222"}, "the reply waited behind a chore"
        finally:
            release.set()
            stop.set()
            running.join(30)
        assert not running.is_alive()


def sent_to(service: Service) -> set[str]:
    return {r.recipient for r in replies(service) if r.status == ReplyStatus.SENT}


def test_a_failing_chore_stops_neither_the_others_nor_the_tick(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("a chore's bug")

    worker = Worker(
        service, {"sandbox": SandboxSender()}, chores=[broken, lambda: ran.append("next")]
    )
    try:
        assert worker.tick(force=True)
    finally:
        worker.close()
    assert ran == ["next"]
    assert "a chore's bug" in caplog.text
