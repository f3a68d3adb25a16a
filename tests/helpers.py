"""Small builders shared by tests."""

from __future__ import annotations

import itertools
import json
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, inspect, select
from sqlalchemy import table as named_table

from antirelou import models
from antirelou.inbound import receive
from antirelou.providers.base import InboundSms
from antirelou.service import Service
from antirelou.settings import Settings, settings_from_mapping
from antirelou.simulate import write_scenario

LINE = "+33939000021"
# The evidence signing key lives outside the database; tests keep theirs out of the repo.
KEY_DIR = tempfile.mkdtemp(prefix="antirelou-test-keys-")
_ids = itertools.count(1)


def sms(sender: str = "+33612345678", body: str = "Salut", provider_id: str = "") -> InboundSms:
    """A text as a provider adapter would hand it over."""
    pid = provider_id or f"SM{next(_ids):032x}"
    return InboundSms("sandbox", pid, sender, LINE, body, {"Body": body})


@contextmanager
def texts_arriving(service: Service) -> Iterator[None]:
    """A thread receiving texts from new senders, one after another, until the block ends."""
    stop = threading.Event()

    def texts() -> None:
        n = 100
        while not stop.is_set():
            receive(service, sms(sender=f"+33612{n:06d}", body=f"texte {n}"))
            n += 1

    writer = threading.Thread(target=texts)
    writer.start()
    try:
        yield
    finally:
        stop.set()
        writer.join()


def table_rows(url: str) -> dict[str, int]:
    """Every table's row count in the database at `url`."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = inspect(conn).get_table_names()
            count = [select(func.count()).select_from(named_table(n)) for n in names]
            return {n: int(conn.execute(q).scalar_one()) for n, q in zip(names, count, strict=True)}
    finally:
        engine.dispose()


def count(service: Service, table: Any, *where: Any) -> int:
    with service.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def inbound_billed(service: Service) -> list[int]:
    """What each received text was booked at, in micros, oldest first."""
    ledger = models.ledger
    query = select(ledger.c.amount_micros).where(ledger.c.kind == "inbound")
    with service.engine.connect() as conn:
        return list(conn.execute(query.order_by(ledger.c.message_id)).scalars())


def replies(service: Service) -> list[Any]:
    with service.engine.connect() as conn:
        return list(conn.execute(select(models.replies).order_by(models.replies.c.id)))


def alert_payloads(service: Service, kind: str) -> list[dict[str, Any]]:
    """The payloads of the alerts of one kind enqueued so far, oldest first."""
    a = models.alerts
    query = select(a.c.payload).where(a.c.kind == kind).order_by(a.c.id)
    with service.engine.connect() as conn:
        return [json.loads(payload) for payload in conn.execute(query).scalars()]


def counter(service: Service, key: str) -> tuple[int, int]:
    c = models.budget_counters
    with service.engine.connect() as conn:
        row = conn.execute(
            select(c.c.spent_micros, c.c.reserved_micros).where(c.c.key == key)
        ).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings as an operator would write them, with test-friendly defaults."""
    data: dict[str, Any] = {
        "database_url": database_url,
        "public_url": "https://decoy.example.org",
        "lines": [{"number": LINE, "provider": "sandbox"}],
        "worker": {"backoff": "1s", "lease": "30s"},
        "evidence": {"key_path": f"{KEY_DIR}/evidence.key"},
    }
    data.update(overrides)
    # Never the default var/totp.key of the working directory, whatever [web] a test sets.
    data["web"] = {"totp_key_path": f"{KEY_DIR}/totp.key", **data.get("web", {})}
    return settings_from_mapping(data)


def raid_window(tmp_path: Path, before: timedelta, after: timedelta) -> Path:
    """The simulated 2017 raid at a fifth of its size, from `before` its start to `after`
    it: the launch surge's tail, then the raid's first texts."""
    texts, truth = write_scenario("raid2017", 3, tmp_path, LINE, 0.2)
    start = datetime.fromisoformat(json.loads(truth.read_text(encoding="utf-8"))["raid"]["start"])
    window = tmp_path / "raid_start.jsonl"
    with texts.open(encoding="utf-8") as source, window.open("w", encoding="utf-8") as target:
        for line in source:
            at = datetime.fromisoformat(json.loads(line)["at"])
            if start - before <= at <= start + after:
                target.write(line)
    return window
