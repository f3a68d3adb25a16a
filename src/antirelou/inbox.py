"""The inbox: texts a web process accepted, waiting for the worker to decide them.

With `[web] intake = "queued"`, a webhook does the least that makes the text safe: its
signature is checked, then the text is parked here with one insert and committed before
the provider gets its 200. The worker, usually in another process, decides parked texts in
arrival order through the same `receive_in` as everything else, each in the transaction
that also removes it from the inbox. The web process's CPU then goes to HTTP alone, and on
SQLite the decision work moves to the other core.

What stays true: an accepted text is durable before the 200 (it is here, or already
decided); a provider's re-delivery is a no-op (the unique key here, then the messages
table's); a text whose decision fails stays parked with its error, retried a few times,
then kept for an operator (`stuck`) rather than dropped. What changes: the decision comes
a moment after the 200, at the worker's next round (it is woken at once when it runs in
the same process, else it polls every `worker.poll_interval`). The decision is taken as of
the moment the text arrived, so delays, windows and raid detection see the real arrival
times.

Where parked texts live: on PostgreSQL, the `inbox` table of the database, and a text
leaves it in the transaction that decides it. On SQLite, a file of their own next to the
database (`antirelou.db` -> `antirelou.inbox.db`): SQLite has one writer at a time, and
a web process parking texts in the main file queued behind the worker's many short write
transactions, sleeping in SQLite's busy handler (p99 223 ms at 300 texts/s, measured).
Then a decided text leaves the inbox just after the decision's commit; should the process
die in between, the next round finds it already stored (the messages table's unique key)
and does nothing more with it.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update

from antirelou import models
from antirelou.db import is_memory, is_sqlite, make_engine
from antirelou.dbfiles import inbox_path
from antirelou.dbutil import Savepoint, dialect_insert, driver_execute_many
from antirelou.inbound import receive_in, without_nul
from antirelou.providers.base import InboundSms
from antirelou.service import Service

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # a text that failed this often waits for an operator (see `state`)
# The side file's layout, kept in its PRAGMA user_version (PostgreSQL's inbox table is
# migrated with the rest). Files from before the stamp have layout 1. A change to the table
# raises this and adds the step from the previous layout in _prepare().
SIDE_FILE_VERSION = 1
# Texts a worker round decides. On SQLite they share a transaction that holds the write
# lock, which a web process's next park then waits for: small enough to keep that short.
DECIDE_BATCH = 32

i = models.inbox
_opening = threading.Lock()


class InboxVersionError(RuntimeError):
    """The inbox's own file was written by a newer antirelou: its texts are not read, and
    the file is left as it is."""


def side_file(engine: Engine) -> Path | None:
    """The inbox's own file beside a SQLite database file; None when it lives in the
    database itself (PostgreSQL, or a SQLite database in memory)."""
    if not is_sqlite(engine) or is_memory(engine):
        return None
    return inbox_path(Path(str(engine.url.database)))


def engine_of(service: Service) -> Engine:
    """The engine that holds parked texts (opening the inbox's own file if need be)."""
    found = _opened(service, create=True)
    assert found is not None
    return found


def _opened(service: Service, *, create: bool) -> Engine | None:
    """engine_of(), or None when there is no inbox file and `create` is False: nothing
    was ever parked, no need to make one."""
    path = side_file(service.engine)
    if path is None:
        return service.engine
    with _opening:
        if service.inbox_engine is None:
            if not create and not path.exists():
                return None
            engine = make_engine(f"sqlite:///{path}")
            try:
                _prepare(engine, path)
            except BaseException:
                engine.dispose()
                raise
            service.inbox_engine = engine
        return service.inbox_engine


def _prepare(engine: Engine, path: Path) -> None:
    """Create the side file's one table, or check that an existing file is in a layout
    this version reads, and stamp it."""
    with engine.begin() as conn:
        found = int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)
        if found > SIDE_FILE_VERSION:
            raise InboxVersionError(
                f"{path} holds parked texts in a newer layout (version {found}; this "
                f"antirelou reads {SIDE_FILE_VERSION}): run the version that wrote it until "
                "they are decided, or upgrade"
            )
        models.inbox.create(conn, checkfirst=True)
        if found < SIDE_FILE_VERSION:
            conn.exec_driver_sql(f"PRAGMA user_version = {SIDE_FILE_VERSION}")


def check(service: Service) -> None:
    """Open the inbox's own file if there is one, so that a layout this version cannot read
    stops a command at start (InboxVersionError) rather than failing later, webhook by
    webhook."""
    _opened(service, create=False)


@functools.cache
def _park_statement(dialect: str) -> Any:
    insert = dialect_insert(dialect, i)
    return insert.on_conflict_do_nothing(index_elements=["provider", "provider_id"])


def park(conn: Connection, sms: InboundSms, now: datetime) -> None:
    """Keep `sms` for the worker to decide; a text already parked is left as it is."""
    park_all(conn, [sms], now)


def park_all(conn: Connection, texts: Sequence[InboundSms], now: datetime) -> None:
    """park() for several texts, in one statement (the web intake parks a batch at once).

    A NUL is replaced as receive_in would (PostgreSQL cannot store one), before the key
    is written: a text carrying one is parked, not refused with a 500 forever."""
    texts = [without_nul(sms) for sms in texts]
    rows = [
        {
            "provider": sms.provider,
            "provider_id": sms.provider_id,
            "received_at": now,
            "sms": _parked(sms),
            "attempts": 0,
            "last_error": None,
        }
        for sms in texts
    ]
    driver_execute_many(conn, _park_statement(conn.dialect.name), rows)


def _parked(sms: InboundSms) -> str:
    # By hand, not dataclasses.asdict: that deep-copies every value, on every webhook.
    fields = {
        "provider": sms.provider,
        "provider_id": sms.provider_id,
        "sender": sms.sender,
        "recipient": sms.recipient,
        "body": sms.body,
        "raw": sms.raw,
        "signature_checked": sms.signature_checked,
        "num_media": sms.num_media,
    }
    if sms.parts is not None:  # only when the provider counted: what older versions read
        fields["parts"] = sms.parts
    return json.dumps(fields, ensure_ascii=False)


def _unpark(text: str) -> InboundSms:
    fields = json.loads(text)
    return InboundSms(**fields)


@dataclass(frozen=True)
class Decided:
    """What one call to `decide_parked` did."""

    texts: int = 0  # decided and removed from the inbox
    replies: int = 0  # of which queued a reply
    failed: int = 0  # left parked with their error

    def __add__(self, other: Decided) -> Decided:
        return Decided(
            self.texts + other.texts, self.replies + other.replies, self.failed + other.failed
        )


def decide_parked(service: Service, limit: int) -> Decided:
    """Decide up to `limit` parked texts, oldest first, each at most once per call.

    On SQLite a batch shares one transaction (one writer anyway, one flush for all). On
    PostgreSQL each text has its own: several workers take different texts (SKIP LOCKED),
    and one text per transaction keeps them from deadlocking on senders' rows taken in
    different orders."""
    per_transaction = limit if service.engine.dialect.name == "sqlite" else 1
    done, after = Decided(), 0
    while (left := limit - done.texts - done.failed) > 0:
        batch, after = _decide_batch(service, min(per_transaction, left), after)
        if batch == Decided():
            break
        done += batch
    return done


def _due(conn: Connection, limit: int, after: int) -> list[Any]:
    query = (
        select(i.c.id, i.c.received_at, i.c.sms, i.c.attempts)
        .where(i.c.attempts < MAX_ATTEMPTS, i.c.id > after)
        .order_by(i.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(conn.execute(query))


def _decide_batch(service: Service, limit: int, after: int) -> tuple[Decided, int]:
    """The next texts after id `after`, decided in one transaction; and the last id seen."""
    parked = _opened(service, create=False)
    if parked is None:
        return Decided(), after
    if parked is service.engine:  # they leave the inbox in the deciding transaction
        with service.engine.begin() as conn:
            rows = _due(conn, limit, after)
            outcomes = _decide(service, conn, rows)
            _settle(conn, rows, outcomes)
    else:
        with parked.connect() as conn:
            rows = _due(conn, limit, after)
        if not rows:
            return Decided(), after
        with service.engine.begin() as conn:
            outcomes = _decide(service, conn, rows)
        with parked.begin() as conn:
            _settle(conn, rows, outcomes)
    done = sum((outcome for outcome in outcomes if isinstance(outcome, Decided)), Decided())
    failed = sum(1 for outcome in outcomes if not isinstance(outcome, Decided))
    return done + Decided(failed=failed), rows[-1].id if rows else after


def _decide(service: Service, conn: Connection, rows: Sequence[Any]) -> list[Decided | str]:
    return [_decide_one(service, conn, row) for row in rows]


def _decide_one(service: Service, conn: Connection, row: Any) -> Decided | str:
    """One parked text in its own savepoint: a failure undoes it alone (and says why)."""
    try:
        with Savepoint(conn):
            receipt = receive_in(service, conn, _unpark(row.sms), now=row.received_at)
    except Exception as exc:
        log.exception("parked text %s could not be decided (attempt %d)", row.id, row.attempts + 1)
        return f"{type(exc).__name__}: {exc}"[:500]
    return Decided(texts=1, replies=int(receipt.reply_id is not None))


def _settle(conn: Connection, rows: Sequence[Any], outcomes: Sequence[Decided | str]) -> None:
    """Decided texts leave the inbox; failed ones stay, one attempt older, with their error."""
    pairs = list(zip(rows, outcomes, strict=True))
    decided = [row.id for row, outcome in pairs if isinstance(outcome, Decided)]
    if decided:
        conn.execute(delete(i).where(i.c.id.in_(decided)))
    for row, outcome in pairs:
        if isinstance(outcome, str):
            conn.execute(
                update(i)
                .where(i.c.id == row.id)
                .values(attempts=i.c.attempts + 1, last_error=outcome)
            )


@dataclass(frozen=True)
class InboxState:
    waiting: int  # parked texts the worker will decide
    stuck: int  # parked texts that failed MAX_ATTEMPTS times: an operator must look
    oldest: datetime | None  # arrival of the oldest waiting text


def state(service: Service) -> InboxState:
    """How the inbox stands, for /metrics."""
    parked = _opened(service, create=False)
    if parked is None:
        return InboxState(0, 0, None)
    fresh = i.c.attempts < MAX_ATTEMPTS
    with parked.connect() as conn:
        waiting, stuck, oldest = conn.execute(
            select(
                func.count().filter(fresh),
                func.count().filter(~fresh),
                func.min(i.c.received_at).filter(fresh),
            )
        ).one()
    return InboxState(int(waiting), int(stuck), oldest)
