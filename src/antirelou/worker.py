"""The worker: sends due replies through each line's provider, once.

It runs as a thread inside `antirelou serve` or alone with `antirelou worker`. Each round
claims a batch (a short transaction), talks to providers with no transaction open, then
records the outcomes in short transactions (replies sent at the same moment share one:
recording.py). Provider calls run `[worker] parallel_sends` at a time: a real API takes a
few hundred milliseconds to answer, and one call at a time would cap a worker at a few
replies per second. The live loop (run_forever) waits SLOW_CALL at most for a round's
calls, so a call that hangs holds back only its own reply; drain() (tests, replays) waits
for every call of a round. Its housekeeping (tick) runs on a thread of its own there, so a
chore that hangs on the network holds back no reply either.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, exists, func, select, union_all

from antirelou import alerts, inbox, models, outbox
from antirelou.db import is_memory, write_turn, writing
from antirelou.dbutil import db_time, driver_read
from antirelou.detect import abuse
from antirelou.evidence import hooks as evidence
from antirelou.evidence.chain import head as evidence_head
from antirelou.evidence.checkpoints import latest as latest_checkpoint
from antirelou.evidence.tick import tick as evidence_tick
from antirelou.floods import IncidentNews, close_calm_incidents
from antirelou.money import to_micros
from antirelou.observability import provider_call
from antirelou.outbox import ClaimedReply, ReplyStatus
from antirelou.phone import mask, mask_numbers
from antirelou.providers.base import OutgoingSms, Sender, SendError, SendResult
from antirelou.recording import Sent, SentRecorder
from antirelou.release import release_held
from antirelou.service import Service

log = logging.getLogger(__name__)
TICK = timedelta(seconds=15)
# How long the live loop's round waits for its provider calls: a real API answers in a few
# hundred milliseconds; a call still running after this goes on without holding the rest.
SLOW_CALL = timedelta(seconds=1)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _next_due_statement() -> Any:
    r = models.replies
    queued = select(func.min(r.c.due_at)).where(r.c.status == ReplyStatus.QUEUED.value)
    leased = select(func.min(r.c.lease_until)).where(r.c.status == ReplyStatus.SENDING.value)
    # Both read the (status, due_at) index; MIN over the union skips the NULL of an empty one.
    both = union_all(queued, leased).subquery()
    return select(func.min(both.c[0]))


_NEXT_DUE = _next_due_statement()
_HELD_OR_OPEN = select(
    exists().where(models.replies.c.status == ReplyStatus.HELD)
    | exists().where(models.incidents.c.closed_at.is_(None))
)


@dataclass
class Worker:
    """Sends replies. `senders` maps a provider name to its adapter."""

    service: Service
    senders: Mapping[str, Sender]
    owner: str = ""
    deliver_alerts: bool = True
    # Edge chores the wiring adds (e.g. deciding on multipart texts that never completed),
    # so the core never imports a provider.
    chores: Sequence[Callable[[], object]] = ()

    def __post_init__(self) -> None:
        self.owner = self.owner or worker_id()
        self.wake = threading.Event()  # a reply may be due: look now, not at the next poll
        self._parked = threading.Event()  # a text may have been parked (queued intake)
        self._last_tick: datetime | None = None
        self._sweeps: dict[str, datetime] = {}
        self._leftovers_decided = False
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight = _InFlight(self._call_ended)
        # On SQLite this worker's threads (deciding, claiming, sending), and the web's
        # intake in the same process, take turns for their writes (db.write_turn).
        self._write_turn = write_turn(self.service.engine)
        currency = self.service.settings.pricing.currency
        self._recorder = SentRecorder(self.service.engine, self.owner, currency)

    def nudge(self) -> None:
        """Something arrived (a reply queued, a text parked): look for work now."""
        self._parked.set()
        self.wake.set()

    def tick(self, force: bool = False) -> bool:
        """Housekeeping, at most every TICK: close calm incidents, release held replies,
        deliver alerts. Separate from sending so a slow alert never delays a reply.
        Returns whether it ran (it may have released replies for the next round)."""
        now = self.service.clock.now()
        if not force and self._last_tick and now - self._last_tick < TICK:
            return False
        self._last_tick = now
        news = IncidentNews()
        with self._writing() as conn:
            close_calm_incidents(conn, now, self.service.settings.defence, news)
            alerts.incident_news(conn, self.service, news, now)
            evidence.incident_news(conn, news, now)
        if not self._queued and not self._leftovers_decided:
            # Texts parked before a switch back to "inline" intake: only a restart switches,
            # so once is enough (a replay ticks thousands of times).
            while self.decide_parked():
                pass
            self._leftovers_decided = True
        release_held(self.service, now, self._sweeps)
        evidence_tick(self.service, now)  # checkpoints, timestamps (a network call), retention
        for chore in self.chores:
            try:
                chore()
            except Exception:  # one chore's failure must not stop the others, nor alerts
                log.exception("worker chore %r failed; it runs again next tick", chore)
        if self.deliver_alerts:
            alerts.deliver_pending(self.service, now)
        return True

    @property
    def _queued(self) -> bool:
        return self.service.settings.web.intake == "queued"

    def decide_parked(self) -> int:
        """Decide texts the web processes parked in the inbox (inbox.py); how many."""
        with self._write_turn:
            done = inbox.decide_parked(self.service, inbox.DECIDE_BATCH)
        return done.texts + done.failed

    def run_once(self) -> int:
        """One round: decide parked texts (queued intake), then claim what is due and try
        to send it. Returns how many texts it decided and replies it claimed."""
        decided = self.decide_parked() if self._queued else 0
        return decided + self._send_round()

    def _send_round(self, patience: float | None = None) -> int:
        """Claim what is due and send it; how many replies it claimed. With `patience` (the
        live loop), the round waits that many seconds at most for its calls."""
        claimed, now = self._claim()
        self._send_all(claimed, now, patience)
        return len(claimed)

    def _claim(self) -> tuple[Sequence[ClaimedReply], datetime]:
        """Lease up to a batch of due replies; they and when they were claimed."""
        settings = self.service.settings.worker
        now = self.service.clock.now()
        with self._writing() as conn:
            claimed = outbox.claim_due(
                conn, now=now, owner=self.owner, lease=settings.lease, limit=settings.batch
            )
        return claimed, now

    def _send_all(
        self, claimed: Sequence[ClaimedReply], claimed_at: datetime, patience: float | None
    ) -> None:
        """Handle each claimed reply, `parallel_sends` at a time. Every one is handled even
        when another fails; the first failure is then raised for the round to log."""
        try:
            self._handle_all(claimed, claimed_at, patience)
        finally:
            self._recorder.flush()  # the round ends with every sent reply recorded

    def _handle_all(
        self, claimed: Sequence[ClaimedReply], claimed_at: datetime, patience: float | None
    ) -> None:
        pool = self._sending_pool()
        if pool is None or (len(claimed) < 2 and patience is None):
            for reply in claimed:
                self._handle(reply, claimed_at)
            return
        futures = {pool.submit(self._handle, reply, claimed_at): reply.id for reply in claimed}
        done, slow = wait(futures, timeout=patience)
        for future in slow:  # it ends (and is recorded) on its own; a failure is logged then
            self._in_flight.add(future, futures[future])
        failures = [error for future in done if (error := future.exception()) is not None]
        for extra in failures[1:]:
            log.error("sending a reply failed too", exc_info=extra)
        if failures:
            raise failures[0]

    def _writing(self) -> contextlib.AbstractContextManager[Connection]:
        """A short write transaction, in this process's write turn (db.writing)."""
        return writing(self.service.engine)

    def _sending_pool(self) -> ThreadPoolExecutor | None:
        """The threads that call providers; None to call them one at a time (one allowed,
        or a database in memory, which a thread of its own would not see)."""
        parallel = self.service.settings.worker.parallel_sends
        if parallel < 2 or is_memory(self.service.engine):
            return None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(parallel, thread_name_prefix="antirelou-send")
        return self._pool

    def drain(self, max_rounds: int = 10_000) -> int:
        """Run rounds until nothing is due (tests and replay)."""
        settings = self.service.settings.worker
        total = 0
        for _ in range(max_rounds):
            count = self.run_once()
            total += count
            # A short batch took all that was due, and a retry it scheduled is due `backoff`
            # later at the earliest: no need for an empty round to find that out.
            if count == 0 or (count < settings.batch and settings.backoff > timedelta(0)):
                break
        return total

    def next_due(self) -> datetime | None:
        """When a round will next find a reply to claim: the earliest queued reply's due
        time or sending reply's lease end (None: nothing queued or sending). Replays use
        it to skip rounds that would claim nothing."""
        engine = self.service.engine
        return db_time(driver_read(engine, _NEXT_DUE, {}).scalar())

    def idle(self) -> bool:
        """Whether a tick would find nothing to do but its daily chores: no reply held,
        no incident open, the evidence chain checkpointed. With `next_due`, it tells a
        replay which ticks it may skip."""
        with self.service.engine.connect() as conn:
            if conn.execute(_HELD_OR_OPEN).scalar():
                return False
            seq, _ = evidence_head(conn)
            last = latest_checkpoint(conn)
            return seq == (last.seq if last else 0)

    def run_forever(self, stop: threading.Event) -> None:
        """Poll until `stop` is set; `wake` shortens the wait when a reply was just queued.

        The tick runs on a thread of its own: its chores talk to the network (alerts by
        webhook and SMTP, timestamps, the providers' balances), each up to its timeout, and
        replies must not wait behind a mail server that hangs when an incident opens.

        With queued intake, parked texts are decided on a thread of their own: a round of
        provider calls takes as long as the slowest of them (a few hundred milliseconds
        against a real API), and decisions, raid detection with them, must not wait behind
        it (39 texts decided a second instead of 300 when they did, measured)."""
        helpers = [self._thread(self._tick_forever, stop, "antirelou-tick")]
        if self._queued:
            abuse.load()  # this process decides the texts
            helpers.append(self._thread(self._decide_forever, stop, "antirelou-decide"))
        interval = self.service.settings.worker.poll_interval
        try:
            while not stop.is_set():
                self.wake.clear()  # before looking: a nudge from now on ends the wait below
                try:
                    busy = self._send_more()
                except Exception:
                    log.exception("worker round failed; retrying")
                    busy = 0
                if not busy:
                    self.wake.wait(interval)
        finally:
            self._finish_sending()
            for helper in helpers:
                helper.join()

    @staticmethod
    def _thread(
        target: Callable[[threading.Event], None], stop: threading.Event, name: str
    ) -> threading.Thread:
        thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
        thread.start()
        return thread

    def _tick_forever(self, stop: threading.Event) -> None:
        """Tick until `stop` is set, waking the senders after a tick (it may have released
        held replies)."""
        interval = self.service.settings.worker.poll_interval
        while not stop.is_set():
            try:
                if self.tick():
                    self.wake.set()
            except Exception:
                log.exception("worker tick failed; retrying")
            stop.wait(interval)

    def _send_more(self) -> int:
        """The live loop's round; how many replies it claimed.

        A round waits for its calls, and an API that hangs on one request (up to the
        sender's timeout) held back every reply due after it. Here the round waits
        SLOW_CALL at most: a call still running then goes on in its thread, and the next
        round is claimed and sent by the other threads. Rounds still wait for their
        ordinary calls, so that each claims a full batch: claiming again as each call
        ended cost 8 % of the whole path's throughput under load (docs/load.md)."""
        if self._in_flight.full(self.service.settings.worker.parallel_sends):
            return 0  # every thread is held by a slow call: the next to end wakes the loop
        return self._send_round(patience=SLOW_CALL.total_seconds())

    def _call_ended(self, reply_id: int, error: BaseException | None, wake: bool) -> None:
        if error is not None:
            log.error("sending reply %s failed", reply_id, exc_info=error)
        if wake:
            self.wake.set()  # a thread is free and due replies were waiting for one

    def _finish_sending(self) -> None:
        """On stop: let the calls in flight end and record what they sent."""
        self._in_flight.wait_all()
        self._recorder.flush()

    def _decide_forever(self, stop: threading.Event) -> None:
        """Decide parked texts until `stop` is set, waking the senders when some were."""
        interval = self.service.settings.worker.poll_interval
        while not stop.is_set():
            try:
                decided = self.decide_parked()
            except Exception:
                log.exception("deciding parked texts failed; retrying")
                decided = 0
            if decided:
                self.wake.set()  # replies may be due
            elif self._parked.wait(interval):
                self._parked.clear()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for sender in self.senders.values():
            sender.close()

    def _handle(self, reply: ClaimedReply, claimed_at: datetime) -> None:
        line = self.service.line(reply.line)
        sender = self.senders.get(line.provider) if line else None
        if line is None or sender is None:
            self._fail(reply, "no provider for this line", "no_provider", ReplyStatus.FAILED)
            return
        opted_out, paused = self._stopped(reply)
        if opted_out:
            self._fail(reply, "recipient opted out", "opted_out", ReplyStatus.CANCELLED)
            return
        if paused:  # the kill switch was pulled after the claim: it stops this one too
            with self._writing() as conn:
                now = self.service.clock.now()
                outbox.give_back(conn, reply, owner=self.owner, now=now)
            log.info("reply %s: its line was paused; back in the queue, not sent", reply.id)
            return
        if not self._still_mine(reply, claimed_at):
            log.info("reply %s: lease lost while it waited in the batch; not sending", reply.id)
            return
        self._deliver(reply, sender, self._outgoing(reply, line.provider))

    def _still_mine(self, reply: ClaimedReply, claimed_at: datetime) -> bool:
        """Whether our lease covers the coming provider call, renewed if need be; False if
        another worker took the reply.

        A lease taken a moment ago (less than a twentieth of it) is as good as a renewed
        one: renewing it, a write and a flush to disk for each reply, would move its end
        by less than that. Later in a batch, behind slow calls, the renewal is what keeps
        a reply whose lease ran out from going out twice."""
        now = self.service.clock.now()
        lease = self.service.settings.worker.lease
        if now - claimed_at < lease / 20:
            return True
        until = now + lease
        with self._writing() as conn:
            return outbox.renew_lease(conn, reply, owner=self.owner, until=until, now=now)

    def _outgoing(self, reply: ClaimedReply, provider: str) -> OutgoingSms:
        callback = None
        if provider != "sandbox":
            callback = f"{self.service.settings.public_base}/webhooks/{provider}/status"
        return OutgoingSms(reply.id, reply.line, reply.recipient, reply.body, callback)

    def _deliver(self, reply: ClaimedReply, sender: Sender, sms: OutgoingSms) -> None:
        try:
            found = None
            if reply.maybe_sent:
                with provider_call(sender.name, "find_sent"):
                    found = sender.find_sent(sms, reply.first_attempt_at)
            if found is None:
                with provider_call(sender.name, "send"):
                    found = sender.send(sms)
            result = found
        except SendError as error:
            self._after_error(reply, error)
            return
        now = self.service.clock.now()
        self._recorder.record(Sent(reply, result.provider_message_id, self._price(result), now))

    def _price(self, result: SendResult) -> int | None:
        """The provider's price in micros, when it is in the currency we count in."""
        currency = self.service.settings.pricing.currency.upper()
        if result.price is None or result.currency not in (None, currency):
            return None
        return to_micros(result.price)

    def _after_error(self, reply: ClaimedReply, error: SendError) -> None:
        settings = self.service.settings.worker
        if not error.transient:
            quiet = error.recipient_fault  # nothing the operators can mend
            self._fail(reply, str(error), error.code, opted_out=error.opted_out, quiet=quiet)
            return
        if reply.attempts >= settings.max_attempts:
            self._fail(reply, f"gave up after {reply.attempts} attempts: {error}", error.code)
            return
        now = self.service.clock.now()
        delay = self._backoff(reply.attempts, error.retry_after)
        with self._writing() as conn:
            outbox.mark_retry(
                conn,
                reply,
                owner=self.owner,
                due_at=now + delay,
                maybe_sent=error.maybe_sent,
                error=str(error),
                code=error.code,
                now=now,
            )
        log.info(
            "reply %s: transient error (%s), retry in %s", reply.id, mask_numbers(str(error)), delay
        )

    def _backoff(self, attempts: int, retry_after: float | None) -> timedelta:
        settings = self.service.settings.worker
        delay: timedelta = settings.backoff * (2 ** max(0, attempts - 1))
        if retry_after is not None:
            delay = max(delay, timedelta(seconds=retry_after))
        return min(delay, settings.max_backoff)

    def _fail(
        self,
        reply: ClaimedReply,
        error: str,
        code: str | None,
        status: ReplyStatus = ReplyStatus.FAILED,
        *,
        opted_out: bool = False,
        quiet: bool = False,
    ) -> None:
        now = self.service.clock.now()
        with self._writing() as conn:
            failed = outbox.mark_failed(
                conn, reply, owner=self.owner, error=error, code=code, now=now, status=status
            )
            if opted_out:  # the recipient's choice, not a fault: nobody is alerted
                outbox.mark_opted_out(conn, reply.line, reply.recipient, now)
            elif failed and status is ReplyStatus.FAILED and not quiet:
                alerts.reply_failed(conn, reply.line, error, code, now)
        recipient, why = mask(reply.recipient), mask_numbers(error)
        log.warning("reply %s to %s not sent: %s", reply.id, recipient, why)

    def _stopped(self, reply: ClaimedReply) -> tuple[bool, bool]:
        """Whether the recipient opted out, and whether the line is paused, right now."""
        return outbox.stopped(self.service.engine, reply.line, reply.recipient)


class _InFlight:
    """The slow provider calls the live loop left running, until they end."""

    def __init__(self, on_end: Callable[[int, BaseException | None, bool], None]) -> None:
        self._on_end = on_end
        self._lock = threading.Lock()
        self._futures: set[Future[None]] = set()
        self._wake_on_end = False

    def add(self, future: Future[None], reply_id: int) -> None:
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(lambda done: self._ended(done, reply_id))

    def _ended(self, future: Future[None], reply_id: int) -> None:
        with self._lock:
            self._futures.discard(future)
            wake, self._wake_on_end = self._wake_on_end, False
        self._on_end(reply_id, future.exception(), wake)

    def full(self, limit: int) -> bool:
        """Whether `limit` calls are in flight; if so, the next one to end is told to wake
        the loop. Otherwise none is: each end would cost a claim (a write transaction) that
        finds nothing, and new replies wake the loop themselves (Worker.nudge)."""
        with self._lock:
            self._wake_on_end = len(self._futures) >= limit
            return self._wake_on_end

    def wait_all(self) -> None:
        with self._lock:
            running = list(self._futures)
        wait(running)
