"""The ledger and the caps. Reservations are conditional UPDATEs, so no cap can be passed.

Rows of `budget_counters`:
- "total": replies reserved and spent since the start (the pot is checked against it);
- "day:YYYY-MM-DD": replies reserved and spent on that calendar day, in the line's timezone;
- "inbound:N": what receiving texts cost. Inbound texts are billed whether we answer or
  not; they count against the pot, sharded over 16 rows so concurrent webhooks do not
  queue on one row lock;
- "donations": the sum of recorded donations, added to the configured pot.
A reply is reserved only when

    day.spent + day.reserved + cost <= daily_cap   and
    total.spent + total.reserved + cost <= pot + donations - inbound spent

both tested by the UPDATE itself: two processes cannot both take the last euro.
Statements are built once (hot path: every text goes through here).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, String, and_, bindparam, func, literal, select, update

from antirelou import models
from antirelou.dbutil import (
    bound_values,
    dialect_insert,
    driver_execute,
    prefixed,
    written_together,
)
from antirelou.policy import BudgetSnapshot, Reason

TOTAL = "total"
DONATIONS = "donations"
INBOUND_SHARDS = 16
counters = models.budget_counters


def day_key(day: str) -> str:
    return f"day:{day}"


def voice_key(day: str) -> str:
    """Answered calls' share of a day (also counted in the day's own row)."""
    return f"voice:{day}"


@dataclass(frozen=True)
class Caps:
    daily: int
    pot: int


def book_inbound(
    conn: Connection, *, at: datetime, amount: int, line: str, message_id: int
) -> None:
    """Record what receiving one text cost."""
    entry = _ledger_row("inbound", at, amount, line, message_id=message_id)
    key = f"inbound:{message_id % INBOUND_SHARDS}"
    both = _ledger_and_bump(conn.dialect.name)
    if both is not None:
        driver_execute(conn, both, entry | _bump_values(key, amount, 0))
        return
    driver_execute(conn, _LEDGER_INSERT, entry)
    _bump(conn, key, spent=amount)


@functools.cache
def _ledger_and_bump(dialect: str) -> Any | None:
    """The ledger row and the counter in one statement (PostgreSQL)."""
    return written_together(dialect, _bump_statement(dialect), _LEDGER_INSERT)


def book_reply(conn: Connection, *, at: datetime, amount: int, line: str, reply_id: int) -> None:
    """Record what one reply cost in the ledger (commit_spend moves the counters)."""
    row = _ledger_row("reply", at, amount, line, reply_id=reply_id)
    driver_execute(conn, _LEDGER_INSERT, row)


def book_call(conn: Connection, *, at: datetime, amount: int, line: str, call_id: int) -> None:
    """Record what answering one call cost (commit_voice moves the counters)."""
    row = _ledger_row("call", at, amount, line) | {"note": f"call {call_id}"}
    driver_execute(conn, _LEDGER_INSERT, row)


def _ledger_row(
    kind: str,
    at: datetime,
    amount: int,
    line: str,
    message_id: int | None = None,
    reply_id: int | None = None,
) -> dict[str, Any]:
    row = {"at": at, "kind": kind, "amount_micros": amount, "line": line, "note": None}
    return row | {"message_id": message_id, "reply_id": reply_id}


_LEDGER_INSERT = models.ledger.insert()
INBOUND_KEYS = tuple(f"inbound:{shard}" for shard in range(INBOUND_SHARDS))


def _sum(value: Any, rows: Any) -> Any:
    return select(func.coalesce(func.sum(value), 0)).where(rows).scalar_subquery()


def _inbound_rows(dialect: str) -> Any:
    if dialect == "sqlite":
        # SQLite compares text byte by byte: the shards' keys are one range of the primary
        # key, read in one step (listing them cost 4 of a read's 7 microseconds).
        return and_(counters.c.key >= "inbound:", counters.c.key < "inbound;")
    # Elsewhere the collation may order punctuation otherwise: the shards are listed (each
    # its own parameter, which driver_execute binds; a plain list would expand at run time).
    return counters.c.key.in_([literal(key, String) for key in INBOUND_KEYS])


@functools.cache
def _totals_statement(dialect: str) -> Any:
    """Each total its own subquery on the primary key: every text reads them, and the table
    gains a row a day (a year of them would be scanned each time otherwise)."""
    both = counters.c.spent_micros + counters.c.reserved_micros
    return select(
        _sum(counters.c.spent_micros, _inbound_rows(dialect)),
        _sum(both, counters.c.key == TOTAL),
        _sum(both, counters.c.key == bindparam("day")),
        _sum(counters.c.spent_micros, counters.c.key == DONATIONS),
    )


@dataclass(frozen=True)
class Totals:
    """What the counters hold, as one transaction read them."""

    inbound: int
    replies: int
    day: int
    donations: int

    def snapshot(self, caps: Caps) -> BudgetSnapshot:
        return BudgetSnapshot(
            day_used=self.day,
            day_cap=caps.daily,
            total_used=self.replies + self.inbound,
            total_cap=caps.pot + self.donations,
        )


def read_totals(conn: Connection, day: str) -> Totals:
    statement = _totals_statement(conn.dialect.name)
    (row,) = driver_execute(conn, statement, {"day": day_key(day)}).rows
    return Totals(*(int(v) for v in row))


def snapshot(conn: Connection, day: str, caps: Caps) -> BudgetSnapshot:
    """What is committed now, read inside the caller's transaction."""
    return read_totals(conn, day).snapshot(caps)


@functools.cache  # per column: a module-level constant of the caller's
def _totals_and(dialect: str, column: Any) -> Any:
    return _totals_statement(dialect).add_columns(column)


def totals_and(
    conn: Connection, day: str, column: Any, params: dict[str, Any]
) -> tuple[Totals, Any]:
    """The totals, and one more value (`column`, a scalar subquery binding `params`) read in
    the same statement: on every text's path, where a statement less is a round trip less
    to PostgreSQL."""
    statement = _totals_and(conn.dialect.name, column)
    (row,) = driver_execute(conn, statement, {"day": day_key(day), **params}).rows
    return Totals(*(int(v) for v in row[:4])), row[4]


def pot(conn: Connection, caps: Caps) -> int:
    """All the money there is: the configured pot plus recorded donations."""
    return caps.pot + read_totals(conn, "").donations


def inbound_spent(conn: Connection) -> int:
    return read_totals(conn, "").inbound


def donate(conn: Connection, amount: int, note: str, at: datetime, actor: str) -> None:
    """Record a donation to the pot (a negative amount corrects a mistaken entry)."""
    conn.execute(
        _LEDGER_INSERT,
        {
            "at": at,
            "kind": "donation",
            "amount_micros": amount,
            "line": None,
            "message_id": None,
            "reply_id": None,
            "note": f"{note} (by {actor})",
        },
    )
    _bump(conn, DONATIONS, spent=amount)


def reserve(conn: Connection, day: str, amount: int, caps: Caps) -> Reason | None:
    """Reserve `amount` for a reply; None on success, else the cap that refused it.

    Run inside a savepoint: on refusal the caller rolls back, so a half-reservation never
    stays. Rows are always locked in the same order (total, then day) to avoid deadlocks.
    """
    return reserve_and_read(conn, day, amount, caps)[0]


def reserve_and_read(
    conn: Connection, day: str, amount: int, caps: Caps, read: Totals | None = None
) -> tuple[Reason | None, BudgetSnapshot]:
    """reserve(), and what is committed once it reserved (the spend alerts' figures, from
    the read it takes anyway rather than a second one).

    `read`: the day's totals as this transaction already read them, with nothing booked
    since, so they need not be read again (receive() reads them to decide, then reserves).
    Only the pot's room is computed from them: the reservation itself is still the
    conditional UPDATE, on the counters as they are when it runs."""
    totals = read_totals(conn, day) if read is None else read
    room = caps.pot + totals.donations - totals.inbound
    if not _reserve_one(conn, TOTAL, amount, room):
        return Reason.POT_EXHAUSTED, totals.snapshot(caps)
    if not _reserve_one(conn, day_key(day), amount, caps.daily):
        return Reason.DAILY_CAP, totals.snapshot(caps)
    after = Totals(
        inbound=totals.inbound,
        replies=totals.replies + amount,
        day=totals.day + amount,
        donations=totals.donations,
    )
    return None, after.snapshot(caps)


def reserve_voice(conn: Connection, day: str, amount: int, cap: int) -> bool:
    """Reserve `amount` in the day's voice share too (after reserve(), in its savepoint)."""
    return _reserve_one(conn, voice_key(day), amount, cap)


def commit_voice(conn: Connection, day: str, amount: int) -> None:
    """A call was answered: its reservations become spend (the day's, the pot's, the share's)."""
    commit_spend(conn, day, amount, amount)
    _bump(conn, voice_key(day), spent=amount, reserved=-amount)


_RESERVE = (
    update(counters)
    .where(counters.c.key == bindparam("k"))
    .where(
        counters.c.spent_micros + counters.c.reserved_micros + bindparam("amount")
        <= bindparam("cap")
    )
    .values(reserved_micros=counters.c.reserved_micros + bindparam("amount"))
)


def _reserve_one(conn: Connection, key: str, amount: int, cap: int) -> bool:
    params = {"k": key, "amount": amount, "cap": cap}
    if driver_execute(conn, _RESERVE, params).rowcount == 1:
        return True
    # Refused, or the counter has no row yet (a new day): create it and ask again. Only
    # then: every reply reserves, and the row is there for all but a day's first.
    _bump(conn, key)
    return driver_execute(conn, _RESERVE, params).rowcount == 1


def commit_spend(conn: Connection, day: str, reserved: int, actual: int) -> None:
    """A reply went out: its reservation becomes spend (at `actual`, if known)."""
    for key in (TOTAL, day_key(day)):
        _bump(conn, key, spent=actual, reserved=-reserved)


def adjust_spend(conn: Connection, day: str, delta: int) -> None:
    """The provider told us the real price; correct the estimate already spent."""
    for key in (TOTAL, day_key(day)):
        _bump(conn, key, spent=delta)


def release(conn: Connection, day: str, reserved: int) -> None:
    """A reply will never go out: give its reservation back."""
    for key in (TOTAL, day_key(day)):
        _bump(conn, key, reserved=-reserved)


_BUMP, _BUMPED = "c_", ("key", "spent_micros", "reserved_micros")


@functools.cache
def _bump_statement(dialect: str) -> Any:
    statement = bound_values(dialect_insert(dialect, counters), _BUMP, _BUMPED)
    return statement.on_conflict_do_update(
        index_elements=["key"],
        set_={
            "spent_micros": counters.c.spent_micros + statement.excluded.spent_micros,
            "reserved_micros": counters.c.reserved_micros + statement.excluded.reserved_micros,
        },
    )


def _bump(conn: Connection, key: str, *, spent: int = 0, reserved: int = 0) -> None:
    """Add to a counter, creating it when this is its first use."""
    driver_execute(conn, _bump_statement(conn.dialect.name), _bump_values(key, spent, reserved))


def _bump_values(key: str, spent: int, reserved: int) -> dict[str, Any]:
    return prefixed(_BUMP, {"key": key, "spent_micros": spent, "reserved_micros": reserved})


def spent_on_day(conn: Connection, day: str) -> tuple[int, int]:
    """(spent, reserved) on replies for a day."""
    row = conn.execute(
        select(counters.c.spent_micros, counters.c.reserved_micros).where(
            counters.c.key == day_key(day)
        )
    ).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def spend_by_day(conn: Connection, since: datetime) -> dict[str, int]:
    """Money spent per UTC day since `since` (inbound and replies), from the ledger."""
    ledger = models.ledger
    day = func.substr(func.cast(ledger.c.at, String), 1, 10)
    rows = conn.execute(
        select(day, func.sum(ledger.c.amount_micros))
        .where(ledger.c.at >= since, ledger.c.kind != "donation")
        .group_by(day)
    )
    return {str(d): int(total) for d, total in rows}


def days_left(conn: Connection, now: datetime, caps: Caps) -> float | None:
    """Days of pot left at the last 7 days' pace (None when nothing was spent)."""
    week = spend_by_day(conn, now - timedelta(days=7))
    per_day = sum(week.values()) / 7
    if per_day <= 0:
        return None
    totals = read_totals(conn, "")
    left = caps.pot + totals.donations - totals.replies - totals.inbound
    return max(0.0, left / per_day)
