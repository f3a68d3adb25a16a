"""The floor under the replay: what a text's essential writes cost on SQLite alone.

    .venv/bin/python benchmarks/replay_floor.py [--scenario raid2017] [--seed 1]

The replay target (2,000 texts/s) is missed, and this says where the limit is not. It
writes, for every text of a simulated scenario, what no design could skip: the message
row, the sender's row, and an evidence record chained to the last one (a salted digest of
the content, the record hash, the head moved), each text in its own BEGIN IMMEDIATE ...
COMMIT, with the real schema (the migrations), in memory as the replay is, on the standard
library's sqlite3 and nothing else. It then replays the same scenario through
`antirelou replay` under the default defence and prints both rates.

The gap between the two is Python: the detectors, the decisions, the bookkeeping and the
layers around each statement, not SQLite (docs/raids.md).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from benchkit import scenario_arguments
from sqlalchemy.pool import StaticPool

from antirelou import migrate
from antirelou.db import make_engine
from antirelou.replay import read_scenario, run_replay
from antirelou.settings import settings_from_mapping
from antirelou.simulate import write_scenario

LINE = "+33939000021"

_MESSAGE = (
    "INSERT INTO messages (provider, provider_id, line, sender, body, num_media, received_at,"
    " raw, signature_checked, decision, reasons, abuse, signals)"
    " VALUES (?, ?, ?, ?, ?, 0, ?, ?, 0, 'none', '[]', '{}', '{}') RETURNING id"
)
_SENDER = (
    "INSERT INTO senders (line, number, first_seen, last_seen, message_count, recent_count,"
    " recent_since, hostile_texts) VALUES (?, ?, ?, ?, 1, 1, ?, 0)"
    " ON CONFLICT (line, number) DO UPDATE SET last_seen = excluded.last_seen,"
    " message_count = senders.message_count + 1"
)
_RECORD = (
    "INSERT INTO evidence_records (seq, at, kind, ref, content_digest, prev_hash, record_hash,"
    " salt, content) VALUES (?, ?, 'inbound', ?, ?, ?, ?, ?, ?)"
)


def schema() -> list[str]:
    """The migrated schema's CREATE statements."""
    engine = make_engine("sqlite://", durable=False, poolclass=StaticPool)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")
        return [str(sql) for (sql,) in rows]


def floor(texts: list[dict[str, str]]) -> float:
    """Texts per second for the essential writes alone."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    for statement in schema():
        db.execute(statement)
    db.execute("INSERT INTO evidence_head (id, seq, record_hash) VALUES (1, 0, ?)", ("0" * 64,))
    started = time.perf_counter()
    for text in texts:
        db.execute("BEGIN IMMEDIATE")
        at, sender = text["at"], text["from"]
        raw = json.dumps({"Body": text["body"]})
        row = (text["id"], text["to"], sender, text["body"], at, raw)
        (message_id,) = db.execute(_MESSAGE, ("replay", *row)).fetchone()
        db.execute(_SENDER, (text["to"], sender, at, at, at))
        seq, prev = db.execute("SELECT seq, record_hash FROM evidence_head WHERE id = 1").fetchone()
        body = json.dumps({"id": text["id"], "from": sender, "body": text["body"]}, sort_keys=True)
        salt = secrets.token_hex(16)
        digest = hashlib.sha256((salt + body).encode()).hexdigest()
        line = f"{seq + 1}|inbound|m:{message_id}|{at}|{digest}|{prev}"
        record_hash = hashlib.sha256(line.encode()).hexdigest()
        ref = f"m:{message_id}"
        db.execute(_RECORD, (seq + 1, at, ref, digest, prev, record_hash, salt, body))
        db.execute(
            "UPDATE evidence_head SET seq = ?, record_hash = ? WHERE id = 1", (seq + 1, record_hash)
        )
        db.execute("COMMIT")
    return len(texts) / (time.perf_counter() - started)


def main() -> int:
    args = scenario_arguments(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scenario, _truth = write_scenario(args.scenario, args.seed, folder, LINE)
        texts = [json.loads(line) for line in scenario.read_text(encoding="utf-8").splitlines()]
        with scenario.open(encoding="utf-8") as handle:
            count = sum(1 for _ in read_scenario(handle))
        rate = floor(texts)
        settings = settings_from_mapping(
            {
                "database_url": f"sqlite:///{folder}/unused.db",
                "lines": [{"number": LINE}],
                "evidence": {"key_path": str(folder / "evidence.key")},
            }
        )
        started = time.perf_counter()
        run_replay(scenario, settings, folder / "replay", timedelta(hours=24), progress=False)
        replayed = count / (time.perf_counter() - started)
    print(f"{args.scenario}: {count:,} texts")
    print(f"  essential writes alone (sqlite3, in memory): {rate:,.0f} texts/s")
    print(f"  antirelou replay (default defence, 24 h drain): {replayed:,.0f} texts/s")
    print(f"  the replay takes {rate / replayed:.0f}x the floor's time per text")
    return 0


if __name__ == "__main__":
    sys.exit(main())
