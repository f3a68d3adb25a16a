"""Raid detection: per-text signals, per-line traffic, and the incident state machine.

Everything here runs inside receive()'s transaction and keeps its state in the database,
so a restart forgets nothing and several processes see the same picture.

Per text (is this sender a raider?):
- abusive first text: an insult at the reader or a threat (detect.abuse);
- copy-paste: the same or nearly the same text from `cluster_min_senders` senders within
  `cluster_window` (MinHash band keys from detect.fingerprint, stored in `text_keys`);
- velocity: more than `velocity_limit` texts within `velocity_window`;
- number block: `block_min_senders` senders from one block of 100 consecutive numbers
  active within `block_window` (raiders' virtual numbers come in runs).

Per line (is this a raid?), from 10-second traffic buckets:
- a raid opens when, over the last 2 minutes, at least `open_hostile_new_senders` new
  senders were hostile and `open_hostile_texts` texts were hostile;
- a swarm opens when new senders per minute exceed `surge_ratio` times the learned baseline
  (mean of the previous 24 hours, never below `baseline_floor_per_minute`) and at least
  `surge_min_new_per_minute`, with a good share of odd-shaped numbers (virtual ranges,
  number blocks, copy-paste) — so a benign media surge of ordinary mobiles does not open one.
An incident extends while signals stay above half those thresholds and closes after
`calm_before_close` without any (hysteresis). Operators can open and close one by hand;
a hand-opened incident only closes by hand.

    CLOSED ──raid or swarm signals / operator──► OPEN ──calm for calm_before_close──► CLOSED
                                                   └──────────operator──────────────► CLOSED
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, case, func, literal_column, select, union_all, update
from sqlalchemy.exc import IntegrityError

from antirelou import models
from antirelou.dbutil import (
    Savepoint,
    bound_values,
    db_time,
    dialect_insert,
    driver_execute,
    prefixed,
    written_together,
)
from antirelou.detect.abuse import AbuseVerdict, assess, is_clearly_abusive
from antirelou.detect.fingerprint import cluster_keys
from antirelou.detect.numbers import shape
from antirelou.policy import Reason
from antirelou.settings import DefenceSettings

BUCKET = timedelta(seconds=10)
SHARDS = 4
WATCH = timedelta(minutes=2)
RATE_WINDOW = timedelta(minutes=1)
BASELINE_WINDOW = timedelta(hours=24)
SIGNAL_WRITE_EVERY = timedelta(seconds=10)
DETECTOR = "detector"


@dataclass(frozen=True)
class TextSignals:
    """What one text says about its sender."""

    abuse: AbuseVerdict
    new_sender: bool
    cluster_size: int = 0  # counted only up to rules.cluster_min_senders (see cluster_size)
    velocity: int = 0
    block_size: int = 0
    virtual: bool = False

    def raider_reasons(
        self, rules: DefenceSettings, incident_open: bool = False
    ) -> tuple[Reason, ...]:
        reasons = []
        if self.new_sender and rules.refuse_abusive_first_text and self.clearly_abusive:
            reasons.append(Reason.ABUSIVE_FIRST_TEXT)
        if self.pasted(rules) and (incident_open or self.abuse.level >= 1):
            # Supporters who heard of the number at once write the same few words ("trop
            # bien cette idée"): a cluster alone is no proof. It counts when the text is at
            # least rude, or while a raid is on, when every pasted text is refused.
            reasons.append(Reason.COPY_PASTE)
        if self.velocity > rules.velocity_limit:
            reasons.append(Reason.HIGH_VELOCITY)
        if self.block_size >= rules.block_min_senders:
            reasons.append(Reason.NUMBER_BLOCK)
        return tuple(reasons)

    @property
    def clearly_abusive(self) -> bool:
        return bool(self.abuse.level >= 2)

    def hostile(self, rules: DefenceSettings) -> bool:
        """Counts towards a raid: abusive, copy-pasted, flooding or from a number block."""
        return bool(self.raider_reasons(rules)) or self.clearly_abusive

    def odd_shape(self, rules: DefenceSettings) -> bool:
        return (
            self.virtual
            or self.block_size >= rules.block_min_senders
            or (self.pasted(rules) and self.abuse.level >= 1)
        )

    def pasted(self, rules: DefenceSettings) -> bool:
        return self.cluster_size >= rules.cluster_min_senders

    def clears_paste_mark(self, marked: tuple[Reason, ...], rules: DefenceSettings) -> bool:
        """Whether this later text lifts a sender's copy-paste mark: he writes back.

        A swarm sends one text per number, in words a genuine man would use; a genuine man
        whose first text happened to match the swarm's wording writes again, in his own
        words ("tu réponds pas ?"). A text that is neither pasted, abusive nor part of a
        flood is that evidence. Only a mark earned by a cluster alone is lifted: abuse,
        velocity and number blocks stick. The sender is then held like any new sender
        during a raid, so the budget still decides when he is answered.
        """
        return (
            set(marked) == {Reason.COPY_PASTE}
            and not self.raider_reasons(rules, incident_open=True)
            and self.abuse.level == 0
        )

    def labels(self, rules: DefenceSettings, incident_open: bool = False) -> list[str]:
        """Short labels stored with the message, for the dashboard and the evidence."""
        labels = [f"abuse:{m}" for m in self.abuse.matches[:3]]
        labels += [r.value for r in self.raider_reasons(rules, incident_open)]
        if self.virtual:
            labels.append("virtual_number")
        return labels


@functools.lru_cache(maxsize=4096)  # a raid pastes the same few texts over and over
def assess_text(body: str) -> AbuseVerdict:
    return assess(body)


def is_abusive(body: str) -> bool:
    return is_clearly_abusive(body)


# --- per-text signals ---------------------------------------------------------------


@functools.cache
def _key_insert(dialect: str, keys: int) -> Any:
    """The INSERT of a text's `keys` keys (:k0, :k1...) for :line, :sender and :at, in one
    statement of `keys` rows: a fifth faster than the same row `keys` times (executemany),
    and a new text inserts 17 of them."""
    rows: list[dict[str, Any]] = [
        {
            "line": bindparam("line"),
            "key": bindparam(f"k{i}"),
            "sender": bindparam("sender"),
            "first_at": bindparam("at"),
        }
        for i in range(keys)
    ]
    statement = dialect_insert(dialect, models.text_keys).values(rows)
    return statement.on_conflict_do_nothing(index_elements=["line", "key", "sender"])


_tk = models.text_keys


@functools.cache
def _cluster_count(keys: int) -> Any:
    """The most senders sharing one of `keys` keys (:k0, :k1...), each counted up to :enough.

    Only whether a key reached `cluster_min_senders` matters, so each key's count stops
    there: an index seek and a few rows per key, instead of counting every sender of a big
    cluster (thousands of rows per text, and growing, during a raid). Each row is one
    sender (the primary key), and selecting a constant rather than the sender lets the
    (line, key, first_at) index answer alone, without a look-up in the table for each row
    (half the time, measured on a replayed raid's keys).
    """
    counts = [
        select(func.count().label("senders")).select_from(
            select(literal_column("1"))
            .where(
                _tk.c.line == bindparam("line"),
                _tk.c.key == bindparam(f"k{i}"),
                _tk.c.first_at > bindparam("since"),
            )
            .limit(bindparam("enough"))
            .subquery()
        )
        for i in range(keys)
    ]
    per_key = union_all(*counts).subquery()
    return select(func.max(per_key.c.senders))


_HAS_KEY: Any = select(literal_column("1")).where(
    _tk.c.line == bindparam("line"),
    _tk.c.key == bindparam("key"),
    _tk.c.sender == bindparam("sender"),
)


def cluster_size(
    conn: Connection,
    line: str,
    sender: str,
    body: str,
    now: datetime,
    window: timedelta,
    enough: int,
) -> int:
    """Record this text's cluster keys; return the most senders sharing one of them, counted
    only up to `enough` (the copy-paste threshold: more changes nothing).

    A raid pastes the same text again and again: two shortcuts, each an index seek, spare
    it the 17-row insert and the 17-key count (their cost was a sixth of a replayed raid).
    A sender who already sent this very text (its exact key is there) has every one of its
    keys already (they were inserted together, and are only ever purged long after the
    window), so nothing is inserted; and when the exact key alone has reached `enough`,
    that is the answer, since no key counts past it.
    """
    keys = cluster_keys(body)
    if not keys:
        return 0
    exact = {"line": line, "key": keys[0]}
    named: dict[str, object] = {f"k{i}": key for i, key in enumerate(keys)}
    if not driver_execute(conn, _HAS_KEY, exact | {"sender": sender}).rows:
        who = {"line": line, "sender": sender, "at": now}
        driver_execute(conn, _key_insert(conn.dialect.name, len(keys)), named | who)
    counted = {"line": line, "since": now - window, "enough": enough}
    if int(driver_execute(conn, _cluster_count(1), counted | {"k0": keys[0]}).scalar()) >= enough:
        return enough
    return int(driver_execute(conn, _cluster_count(len(keys)), named | counted).scalar() or 0)


_s = models.senders
_BLOCK_COUNT = select(func.count()).where(
    _s.c.line == bindparam("line"),
    _s.c.number >= bindparam("low"),
    _s.c.number < bindparam("high"),
    _s.c.last_seen > bindparam("since"),
)


def block_size(conn: Connection, line: str, e164: str, now: datetime, window: timedelta) -> int:
    """Distinct senders active recently in the same block of 100 numbers."""
    block = shape(e164).block
    params = {"line": line, "low": block, "high": block + ":", "since": now - window}
    return int(driver_execute(conn, _BLOCK_COUNT, params).scalar())


_MARK_RAIDER = (
    update(_s)
    .where(_s.c.line == bindparam("l"), _s.c.number == bindparam("n"))
    .where(_s.c.raider_signals.is_(None))
    .values(raider_signals=bindparam("signals"))
)


def mark_raider(conn: Connection, line: str, number: str, reasons: tuple[Reason, ...]) -> None:
    """Remember that a sender looked like a raider: it sticks for his later texts."""
    signals = json.dumps([r.value for r in reasons])
    driver_execute(conn, _MARK_RAIDER, {"l": line, "n": number, "signals": signals})


_CLEAR_RAIDER = (
    update(_s)
    .where(_s.c.line == bindparam("l"), _s.c.number == bindparam("n"))
    .values(raider_signals=None)
)


def clear_raider(conn: Connection, line: str, number: str) -> None:
    """Forget a sender's raider mark (see TextSignals.clears_paste_mark)."""
    driver_execute(conn, _CLEAR_RAIDER, {"l": line, "n": number})


# --- per-line traffic ------------------------------------------------------------------


def bucket_of(when: datetime) -> datetime:
    seconds = int(when.timestamp()) // 10 * 10
    return datetime.fromtimestamp(seconds, UTC)


def hour_of(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


_BUCKET_COUNTS = ("texts", "new_senders", "hostile_texts", "new_hostile", "new_odd_shape")
_HOURLY = "h_"  # the hourly upsert's parameter prefix


@functools.cache
def _traffic_upsert(dialect: str, hourly: bool) -> Any:
    table = models.traffic_hours if hourly else models.traffic
    names = ("texts", "new_senders") if hourly else _BUCKET_COUNTS
    keys = ["line", "hour", "shard"] if hourly else ["line", "bucket", "shard"]
    statement = dialect_insert(dialect, table)
    if hourly:  # bound by name: on PostgreSQL it runs inside the other's WITH
        statement = bound_values(statement, _HOURLY, [*keys, *names])
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={name: table.c[name] + statement.excluded[name] for name in names},
    )


@functools.cache
def _both_upserts(dialect: str) -> Any | None:
    """Both counters in one statement (PostgreSQL); the hourly `texts` and `new_senders`
    are this text's, as in the 10-second bucket."""
    hourly, bucket = _traffic_upsert(dialect, True), _traffic_upsert(dialect, False)
    return written_together(dialect, hourly, bucket)


def count_traffic(
    conn: Connection,
    line: str,
    now: datetime,
    shard: int,
    signals: TextSignals,
    rules: DefenceSettings,
) -> None:
    """Add one text to the line's 10-second and hourly counters."""
    hostile = signals.hostile(rules)
    new = signals.new_sender
    counts = {
        "texts": 1,
        "new_senders": int(new),
        "hostile_texts": int(hostile),
        "new_hostile": int(new and hostile),
        "new_odd_shape": int(new and signals.odd_shape(rules)),
    }
    # Both counters are sharded: on PostgreSQL one row per line would be locked by every
    # text of every process until its commit. Readers sum the shards.
    shard %= SHARDS
    bucket = {"line": line, "bucket": bucket_of(now), "shard": shard, **counts}
    hour = {"line": line, "hour": hour_of(now), "shard": shard, "texts": 1, "new_senders": int(new)}
    hour = prefixed(_HOURLY, hour)
    dialect = conn.dialect.name
    both = _both_upserts(dialect)
    if both is not None:
        driver_execute(conn, both, bucket | hour)
        return
    driver_execute(conn, _traffic_upsert(dialect, False), bucket)
    driver_execute(conn, _traffic_upsert(dialect, True), hour)


@dataclass(frozen=True)
class Pulse:
    """The line's recent traffic, from the buckets."""

    new_per_minute: int
    baseline_per_minute: float
    hostile_texts: int
    new_hostile: int
    new_odd_shape: int
    texts: int

    def describe(self) -> dict[str, object]:
        return {
            "new_senders_per_minute": self.new_per_minute,
            "baseline_per_minute": round(self.baseline_per_minute, 2),
            "hostile_texts_2min": self.hostile_texts,
            "hostile_new_senders_2min": self.new_hostile,
            "odd_shaped_new_senders_2min": self.new_odd_shape,
            "texts_2min": self.texts,
        }


_t, _h = models.traffic, models.traffic_hours
# New senders over the 24 hours before the current one: the baseline.
_BASELINE = select(func.coalesce(func.sum(_h.c.new_senders), 0)).where(
    _h.c.line == bindparam("line"),
    _h.c.hour >= bindparam("since"),
    _h.c.hour < bindparam("hour"),
)
# The 2-minute sums (every text reads them).
_RECENT = select(
    func.coalesce(func.sum(case((_t.c.bucket > bindparam("minute"), _t.c.new_senders))), 0),
    func.coalesce(func.sum(_t.c.hostile_texts), 0),
    func.coalesce(func.sum(_t.c.new_hostile), 0),
    func.coalesce(func.sum(_t.c.new_odd_shape), 0),
    func.coalesce(func.sum(_t.c.texts), 0),
).where(_t.c.line == bindparam("line"), _t.c.bucket > bindparam("watch"))

# The baseline changes only when the hour does: it is read once an hour on each database
# connection, and kept in the connection's own `info` (so it belongs to one database and
# goes with the connection). Reading it with every text was a third of what SQLite spent
# watching the line. What that can miss until the next hour: the texts of a past hour
# decided late (parked by the queued intake a moment before the hour turned), or counted
# by a batch that then rolled back; a few new senders in a day's sum, where the baseline
# only scales a threshold.
_BASELINES = "antirelou.floods.baselines"
_BASELINES_KEPT = 64  # lines times hours; older ones are dropped


def _baseline_total(conn: Connection, line: str, now: datetime) -> int:
    hour = hour_of(now)
    known: dict[tuple[str, datetime], int] = conn.info.setdefault(_BASELINES, {})
    total = known.get((line, hour))
    if total is None:
        params = {"line": line, "since": hour - BASELINE_WINDOW, "hour": hour}
        total = int(driver_execute(conn, _BASELINE, params).scalar())
        if len(known) >= _BASELINES_KEPT:
            known.clear()
        known[line, hour] = total
    return total


def _recent_params(line: str, now: datetime) -> dict[str, object]:
    return {"line": line, "minute": now - RATE_WINDOW, "watch": now - WATCH}


def _pulse_of(row: Any, baseline_total: int, rules: DefenceSettings) -> Pulse:
    """A Pulse from the first five columns of a _RECENT row, and the baseline."""
    minute, hostile, new_hostile, odd, texts = row[:5]
    per_minute = baseline_total / (BASELINE_WINDOW / timedelta(minutes=1))
    baseline = max(rules.baseline_floor_per_minute, per_minute)
    return Pulse(int(minute), baseline, int(hostile), int(new_hostile), int(odd), int(texts))


def raid_signals(p: Pulse, rules: DefenceSettings, scale: float = 1.0) -> list[str]:
    """Which incident conditions hold (scale < 1 gives the lower 'still hot' thresholds)."""
    signals = []
    if p.new_hostile >= rules.open_hostile_new_senders * scale and (
        p.hostile_texts >= rules.open_hostile_texts * scale
    ):
        signals.append("hostile_senders")
    surge = p.new_per_minute >= max(
        rules.surge_min_new_per_minute * scale, rules.surge_ratio * scale * p.baseline_per_minute
    )
    new_2min = max(p.new_per_minute, 1)
    if surge and p.new_odd_shape / new_2min >= rules.surge_odd_shape_fraction:
        signals.append("new_sender_surge")
    return signals


# --- incidents -------------------------------------------------------------------------


@dataclass
class IncidentNews:
    """What changed in this transaction, for alerts and evidence."""

    opened: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)


_i = models.incidents
_OPEN_INCIDENT = select(_i.c.id).where(_i.c.line == bindparam("line"), _i.c.closed_at.is_(None))


def open_incident_id(conn: Connection, line: str) -> int | None:
    # On every text's path (receive() asks whether a raid is on): the driver's cursor.
    found = driver_execute(conn, _OPEN_INCIDENT, {"line": line}).scalar()
    return None if found is None else int(found)


_open = (_i.c.line == bindparam("line"), _i.c.closed_at.is_(None))
# What watch() needs, in one statement: the recent sums and the line's open incident, if any.
_WATCH = _RECENT.add_columns(
    select(_i.c.id).where(*_open).scalar_subquery(),
    select(_i.c.last_signal_at).where(*_open).scalar_subquery(),
)


class Watched(NamedTuple):
    """The line's open incident as a text came in, and once its pulse was read."""

    before: int | None
    after: int | None


def watch(
    conn: Connection, line: str, now: datetime, rules: DefenceSettings, news: IncidentNews
) -> Watched:
    """Open, extend or close the line's incident from its pulse."""
    (row,) = driver_execute(conn, _WATCH, _recent_params(line, now)).rows
    p = _pulse_of(row, _baseline_total(conn, line, now), rules)
    current, last_signal_at = row[5], db_time(row[6])
    if current is None:
        signals = raid_signals(p, rules)
        if not signals:
            return Watched(None, None)
        opened = open_incident(
            conn, line, now, DETECTOR, {"signals": signals, **p.describe()}, news
        )
        return Watched(None, opened)
    current = int(current)
    assert last_signal_at is not None
    if raid_signals(p, rules, scale=0.5):
        if last_signal_at < now - SIGNAL_WRITE_EVERY:  # else _still_hot would change nothing
            _still_hot(conn, current, now)
        return Watched(current, current)
    if last_signal_at > now - rules.calm_before_close:  # not calm yet: nothing to close
        return Watched(current, current)
    close_calm_incidents(conn, now, rules, news, line=line)
    return Watched(current, open_incident_id(conn, line))


def open_incident(
    conn: Connection,
    line: str,
    now: datetime,
    by: str,
    signals: Mapping[str, object],
    news: IncidentNews,
) -> int:
    """Open an incident unless one is open already (one per line, by a unique index)."""
    savepoint = Savepoint(conn)
    try:
        new_id = conn.execute(
            models.incidents.insert()
            .values(
                line=line,
                opened_at=now,
                opened_by=by,
                signals=json.dumps(signals, sort_keys=True),
                last_signal_at=now,
                texts=0,
                legal_hold=False,
            )
            .returning(models.incidents.c.id)
        ).scalar_one()
    except IntegrityError:
        savepoint.rollback()
        existing = open_incident_id(conn, line)
        assert existing is not None
        return existing
    savepoint.commit()
    news.opened.append(int(new_id))
    return int(new_id)


def close_incident(conn: Connection, incident_id: int, now: datetime, by: str) -> bool:
    i = models.incidents
    result = conn.execute(
        update(i)
        .where(i.c.id == incident_id, i.c.closed_at.is_(None))
        .values(closed_at=now, closed_by=by)
    )
    return result.rowcount == 1


_CALM = select(_i.c.id).where(
    _i.c.closed_at.is_(None),
    _i.c.opened_by == DETECTOR,
    _i.c.last_signal_at <= bindparam("calm_since"),
)
_CALM_ON_LINE = _CALM.where(_i.c.line == bindparam("line"))


def close_calm_incidents(
    conn: Connection,
    now: datetime,
    rules: DefenceSettings,
    news: IncidentNews,
    line: str | None = None,
) -> None:
    """Close detector-opened incidents that have been calm long enough.

    Called by each text and by the worker's tick, so an incident closes even when the
    line falls silent.
    """
    params: dict[str, object] = {"calm_since": now - rules.calm_before_close}
    query = _CALM
    if line is not None:
        query, params = _CALM_ON_LINE, params | {"line": line}
    calm = [row[0] for row in driver_execute(conn, query, params).rows]
    for incident_id in calm:
        if close_incident(conn, int(incident_id), now, DETECTOR):
            news.closed.append(int(incident_id))


_STILL_HOT = (
    update(_i)
    .where(_i.c.id == bindparam("iid"), _i.c.last_signal_at < bindparam("stale"))
    .values(last_signal_at=bindparam("now"))
)


def _still_hot(conn: Connection, incident_id: int, now: datetime) -> None:
    params = {"iid": incident_id, "stale": now - SIGNAL_WRITE_EVERY, "now": now}
    driver_execute(conn, _STILL_HOT, params)
