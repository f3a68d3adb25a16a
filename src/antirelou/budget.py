"""The ledger and the caps. Reservations are conditional UPDATEs, so no cap can be passed.

Two kinds of rows in `budget_counters`:
- "total": replies reserved and spent since the start (the pot is checked against it);
- "day:YYYY-MM-DD": replies reserved and spent on that calendar day, in the line's timezone.
Inbound texts are billed whether we answer or not; they are booked in the ledger and in
sharded "inbound:N" counters (sharded so concurrent webhooks do not queue on one row) and
count against the pot. A reply is reserved only when

    day.spent + day.reserved + cost <= daily_cap   and
    total.spent + total.reserved + cost <= pot - inbound spent

both tested by the UPDATE itself: two processes cannot both take the last euro.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, update

from antirelou import models
from antirelou.dbutil import dialect_insert, insert_or_ignore
from antirelou.policy import BudgetSnapshot, Reason

TOTAL = "total"
INBOUND_SHARDS = 16


def day_key(day: str) -> str:
    return f"day:{day}"


@dataclass(frozen=True)
class Caps:
    daily: int
    pot: int


def book_inbound(
    conn: Connection, *, at: datetime, amount: int, line: str, message_id: int
) -> None:
    """Record what receiving one text cost."""
    conn.execute(
        models.ledger.insert().values(
            at=at, kind="inbound", amount_micros=amount, line=line, message_id=message_id
        )
    )
    _bump(conn, f"inbound:{message_id % INBOUND_SHARDS}", spent=amount)


def snapshot(conn: Connection, day: str, caps: Caps) -> BudgetSnapshot:
    """What is committed now, read inside the caller's transaction."""
    used = _used_by_key(conn, [TOTAL, day_key(day)])
    total_used = used.get(TOTAL, 0) + inbound_spent(conn)
    return BudgetSnapshot(used.get(day_key(day), 0), caps.daily, total_used, caps.pot)


def inbound_spent(conn: Connection) -> int:
    counters = models.budget_counters
    query = select(func.coalesce(func.sum(counters.c.spent_micros), 0)).where(
        counters.c.key.like("inbound:%")
    )
    return int(conn.execute(query).scalar_one())


def reserve(conn: Connection, day: str, amount: int, caps: Caps) -> Reason | None:
    """Reserve `amount` for a reply; None on success, else the cap that refused it.

    Run inside a savepoint: on refusal the caller rolls back, so a half-reservation never stays.
    """
    # Rows are always locked in the same order (total, then day) to avoid deadlocks.
    if not _reserve_one(conn, TOTAL, amount, caps.pot - inbound_spent(conn)):
        return Reason.POT_EXHAUSTED
    if not _reserve_one(conn, day_key(day), amount, caps.daily):
        return Reason.DAILY_CAP
    return None


def _reserve_one(conn: Connection, key: str, amount: int, cap: int) -> bool:
    _ensure_counter(conn, key)
    counters = models.budget_counters
    result = conn.execute(
        update(counters)
        .where(counters.c.key == key)
        .where(counters.c.spent_micros + counters.c.reserved_micros + amount <= cap)
        .values(reserved_micros=counters.c.reserved_micros + amount)
    )
    return result.rowcount == 1


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


def _bump(conn: Connection, key: str, *, spent: int = 0, reserved: int = 0) -> None:
    """Add to a counter, creating it when this is its first use."""
    counters = models.budget_counters
    statement = dialect_insert(conn, counters).values(
        key=key, spent_micros=spent, reserved_micros=reserved
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "spent_micros": counters.c.spent_micros + statement.excluded.spent_micros,
                "reserved_micros": counters.c.reserved_micros + statement.excluded.reserved_micros,
            },
        )
    )


def _ensure_counter(conn: Connection, key: str) -> None:
    conn.execute(
        insert_or_ignore(
            conn, models.budget_counters, ["key"], key=key, spent_micros=0, reserved_micros=0
        )
    )


def _used_by_key(conn: Connection, keys: list[str]) -> dict[str, int]:
    counters = models.budget_counters
    rows = conn.execute(
        select(counters.c.key, counters.c.spent_micros + counters.c.reserved_micros).where(
            counters.c.key.in_(keys)
        )
    )
    return {key: int(used) for key, used in rows}


def spent_on_day(conn: Connection, day: str) -> tuple[int, int]:
    """(spent, reserved) on replies for a day."""
    counters = models.budget_counters
    row = conn.execute(
        select(counters.c.spent_micros, counters.c.reserved_micros).where(
            counters.c.key == day_key(day)
        )
    ).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)
