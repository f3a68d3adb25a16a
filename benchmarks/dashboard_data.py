"""Generate a database with N stored texts (default 1,000,000), fast, for benchmarks/dashboard.py.

The rows are what receive() and the worker would have written over 60 days: ordinary
senders (a first text, sometimes a second), five raids (insults from many numbers, each
with its incident), replies sent, the ledger, the traffic counters the overview reads, the
budget counters. They are written with bulk inserts (executemany on SQLite, COPY on
PostgreSQL) inside one transaction, after the schema is created by the real migrations.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

LINE = "+33939000021"
DAYS = 60
RAIDS = 5
RAID_SHARE = 0.3  # of all texts
INBOUND, SEGMENT = 7_500, 76_270  # micro-euros
FIRST = ["Salut c'est {n} du bar", "Coucou, {n} du concert", "Bonsoir, c'est {n}", "Hello {n} ici"]
NAMES = ["Marc", "Julien", "Karim", "Tom", "Paul", "Max", "Hugo", "Yanis", "Léo", "Nico"]
INSULTS = ["sale pute de féministe", "salope va", "connasse on va vider ta cagnotte", "grosse pute"]


@dataclass
class Tables:
    messages: list[tuple[Any, ...]] = field(default_factory=list)
    replies: list[tuple[Any, ...]] = field(default_factory=list)
    ledger: list[tuple[Any, ...]] = field(default_factory=list)
    senders: dict[str, list[Any]] = field(default_factory=dict)
    buckets: Counter[tuple[datetime, str]] = field(default_factory=Counter)
    hours: Counter[tuple[datetime, str]] = field(default_factory=Counter)
    incidents: list[tuple[Any, ...]] = field(default_factory=list)


def _bucket(when: datetime) -> datetime:
    return when.replace(second=when.second // 10 * 10, microsecond=0)


def _count(t: Tables, when: datetime, new: bool) -> None:
    b, h = _bucket(when), when.replace(minute=0, second=0, microsecond=0)
    t.buckets[(b, "texts")] += 1
    t.hours[(h, "texts")] += 1
    if new:
        t.buckets[(b, "new")] += 1
        t.hours[(h, "new")] += 1


def _ordinary(t: Tables, rng: random.Random, when: datetime, number: str) -> None:
    new = number not in t.senders
    mid = len(t.messages) + 1
    replied = new
    body = rng.choice(FIRST).format(n=rng.choice(NAMES)) if new else "Tu réponds pas ?"
    reasons = ["first_text_in_window"] if replied else ["already_replied_in_window"]
    decision = "reply" if replied else "none"
    t.messages.append(
        (mid, f"B{mid}", number, body, when, decision, json.dumps(reasons), 0, "[]", None)
    )
    t.ledger.append((when, "inbound", INBOUND, mid, None))
    if replied:
        rid = len(t.replies) + 1
        sent = when + timedelta(seconds=2)
        t.replies.append((rid, mid, number, when, sent))
        t.ledger.append((sent, "reply", SEGMENT, None, rid))
    state = t.senders.setdefault(number, [when, when, 0, None])
    state[1], state[2] = when, state[2] + 1
    if replied:
        state[3] = when
    _count(t, when, new)


def _raider(t: Tables, rng: random.Random, when: datetime, number: str, incident: int) -> None:
    new = number not in t.senders
    mid = len(t.messages) + 1
    body = rng.choice(INSULTS)
    reasons = json.dumps(["abusive_first_text", "copy_paste_cluster"])
    signals = json.dumps([f"abuse:{body.split()[-1]}", "abusive_first_text"])
    t.messages.append((mid, f"B{mid}", number, body, when, "none", reasons, 2, signals, incident))
    t.ledger.append((when, "inbound", INBOUND, mid, None))
    state = t.senders.setdefault(number, [when, when, 0, None])
    state[1], state[2] = when, state[2] + 1
    _count(t, when, new)


def generate(total: int, end: datetime, seed: int = 1) -> Tables:
    """Rows in time order; raids of RAID_SHARE * total texts in 5 bursts of a few hours."""
    rng = random.Random(seed)
    t = Tables()
    start = end - timedelta(days=DAYS)
    raid_texts = int(total * RAID_SHARE)
    ordinary = total - raid_texts
    raid_starts = sorted(start + timedelta(days=rng.uniform(1, DAYS - 1)) for _ in range(RAIDS))
    events: list[tuple[datetime, int]] = [
        (start + timedelta(seconds=rng.uniform(0, DAYS * 86400)), 0) for _ in range(ordinary)
    ]
    per_raid = raid_texts // RAIDS
    for k, raid_start in enumerate(raid_starts, 1):
        events += [(raid_start + timedelta(seconds=i * 0.4), k) for i in range(per_raid)]
        opened = raid_start + timedelta(seconds=40)
        closed = raid_start + timedelta(seconds=per_raid * 0.4 + 1200)
        signals = json.dumps({"signals": ["hostile_senders"], "new_senders_per_minute": 120})
        t.incidents.append((k, opened, closed, signals))
    events.sort()
    regulars = [f"+336{rng.randint(10_000_000, 99_999_999)}" for _ in range(ordinary * 3 // 4)]
    for when, raid in events:
        when = when.replace(tzinfo=UTC)
        if raid:
            _raider(t, rng, when, f"+337{rng.randint(10_000_000, 99_999_999)}", raid)
        else:
            _ordinary(t, rng, when, rng.choice(regulars))
    return t


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")


def rows(t: Tables, dialect: str) -> Iterator[tuple[str, list[str], list[tuple[Any, ...]]]]:
    """(table, columns, rows) in foreign-key order, times formatted for the dialect."""
    when = _iso if dialect == "sqlite" else (lambda v: v)
    yield (
        "incidents",
        [
            "id",
            "line",
            "opened_at",
            "closed_at",
            "opened_by",
            "closed_by",
            "signals",
            "last_signal_at",
            "texts",
            "legal_hold",
        ],
        [
            (i, LINE, when(o), when(c), "detector", "detector", s, when(c), 0, False)
            for i, o, c, s in t.incidents
        ],
    )
    yield (
        "messages",
        [
            "id",
            "provider",
            "provider_id",
            "line",
            "sender",
            "body",
            "num_media",
            "received_at",
            "raw",
            "signature_checked",
            "decision",
            "reasons",
            "abuse",
            "signals",
            "incident_id",
        ],
        [
            (
                mid,
                "sandbox",
                pid,
                LINE,
                num,
                body,
                0,
                when(at),
                '{"Body": "..."}',
                True,
                dec,
                rea,
                abuse,
                sig,
                inc,
            )
            for mid, pid, num, body, at, dec, rea, abuse, sig, inc in t.messages
        ],
    )
    yield (
        "senders",
        [
            "line",
            "number",
            "first_seen",
            "last_seen",
            "message_count",
            "last_reply_at",
            "recent_count",
            "hostile_texts",
        ],
        [
            (LINE, n, when(f), when(last), c, when(r), 1, 0)
            for n, (f, last, c, r) in t.senders.items()
        ],
    )
    yield (
        "replies",
        [
            "id",
            "message_id",
            "line",
            "recipient",
            "claimed_at",
            "body",
            "encoding",
            "segments",
            "reserved_micros",
            "cost_micros",
            "budget_day",
            "status",
            "due_at",
            "attempts",
            "maybe_sent",
            "provider_message_id",
            "created_at",
            "sent_at",
            "updated_at",
        ],
        [
            (
                rid,
                mid,
                LINE,
                num,
                when(at),
                "Bonjour. Non, c'est non.",
                "GSM-7",
                1,
                SEGMENT,
                SEGMENT,
                at.date().isoformat(),
                _status(rid),
                when(at),
                1,
                False,
                f"SB{rid}",
                when(at),
                when(sent),
                when(sent),
            )
            for rid, mid, num, at, sent in t.replies
        ],
    )
    yield (
        "ledger",
        ["at", "kind", "amount_micros", "line", "message_id", "reply_id"],
        [(when(at), kind, amount, LINE, mid, rid) for at, kind, amount, mid, rid in t.ledger],
    )
    yield (
        "traffic",
        [
            "line",
            "bucket",
            "shard",
            "texts",
            "new_senders",
            "hostile_texts",
            "new_hostile",
            "new_odd_shape",
        ],
        _traffic(t, when),
    )
    yield ("traffic_hours", ["line", "hour", "shard", "texts", "new_senders"], _hours(t, when))
    yield ("budget_counters", ["key", "spent_micros", "reserved_micros"], _counters(t))


def _status(reply_id: int) -> str:
    """A realistic mix: mostly delivered, a few still held or queued."""
    k = reply_id % 1000
    if k == 0:
        return "held"
    if k == 1:
        return "queued"
    return "delivered" if k < 850 else "sent" if k < 950 else "undelivered" if k < 980 else "failed"


def _traffic(t: Tables, when: Any) -> list[tuple[Any, ...]]:
    keys = sorted({b for b, _ in t.buckets})
    return [
        (LINE, when(b), 0, t.buckets[(b, "texts")], t.buckets[(b, "new")], 0, 0, 0) for b in keys
    ]


def _hours(t: Tables, when: Any) -> list[tuple[Any, ...]]:
    keys = sorted({h for h, _ in t.hours})
    return [(LINE, when(h), 0, t.hours[(h, "texts")], t.hours[(h, "new")]) for h in keys]


def _counters(t: Tables) -> list[tuple[Any, ...]]:
    replies = sum(1 for r in t.ledger if r[1] == "reply") * SEGMENT
    inbound = len(t.messages) * INBOUND
    per_day: Counter[str] = Counter()
    for at, kind, amount, _mid, _rid in t.ledger:
        if kind == "reply":
            per_day[at.date().isoformat()] += amount
    rows = [("total", replies, 0), ("inbound:0", inbound, 0), ("donations", 50_000_000_000, 0)]
    return rows + [(f"day:{day}", spent, 0) for day, spent in per_day.items()]


def write(engine: Engine, t: Tables) -> None:
    """Bulk-insert every table in one transaction."""
    if engine.dialect.name == "sqlite":
        _write_sqlite(str(engine.url.database), t)
    else:
        _write_postgres(engine, t)


def _write_sqlite(path: str, t: Tables) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        for table, columns, data in rows(t, "sqlite"):
            marks = ", ".join("?" for _ in columns)
            insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
            conn.executemany(insert, data)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


def _write_postgres(engine: Engine, t: Tables) -> None:
    raw = engine.raw_connection()
    try:
        cursor: Any = raw.cursor()
        for table, columns, data in rows(t, "postgresql"):
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in data:
                    copy.write_row(row)
        for table in ("incidents", "messages", "replies", "ledger"):
            sequence = f"pg_get_serial_sequence('{table}', 'id')"
            cursor.execute(f"SELECT setval({sequence}, (SELECT max(id) FROM {table}))")  # noqa: S608
        raw.commit()
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
