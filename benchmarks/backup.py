"""How long `antirelou db backup` and `db restore` take, and what a backup costs the texts
arriving meanwhile.

    .venv/bin/python benchmarks/backup.py [--scenario raid2017] [--seed 1] [--postgres URL]

It replays a simulated scenario (the 2017 raid by default: its database is what a
collective would have after such a night), then, on that database as a file on disk:
- times `antirelou db backup` (SQLite's online backup, the integrity check, the evidence
  chain checked), run as the command it is, while a thread of this process keeps receiving
  texts through receive(), as webhooks would, and prints how long those texts took before
  and during the backup;
- times `restore` of that backup in place of the database (the service stopped).

With --postgres URL (a server; the benchmark makes two databases on it and drops them), the
replayed database's rows are copied into PostgreSQL first, the backup is a pg_dump archive,
and `antirelou db restore` puts it into a new, empty database.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from benchkit import new_database, percentile, scenario_arguments
from sqlalchemy import Connection, Table, delete, func, insert, select, text

from antirelou import migrate, models
from antirelou.clock import SystemClock
from antirelou.db import make_engine
from antirelou.inbound import receive
from antirelou.providers.base import InboundSms
from antirelou.replay import run_replay
from antirelou.restore import restore
from antirelou.service import Service
from antirelou.settings import Settings, settings_from_mapping
from antirelou.simulate import write_scenario

LINE = "+33939000021"
ANTIRELOU = str(Path(sys.executable).parent / "antirelou")


class Texts(threading.Thread):
    """Texts received one after another, each one's time kept, until stopped."""

    def __init__(self, service: Service) -> None:
        super().__init__()
        self.service = service
        self.stop = threading.Event()
        self.seconds: list[float] = []

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            sms = InboundSms("bench", f"B{n}", f"+33611{n:06d}", LINE, "Salut", {})
            started = time.perf_counter()
            receive(self.service, sms)
            self.seconds.append(time.perf_counter() - started)

    def over(self, seconds: float) -> list[float]:
        """The times of the texts received over the next `seconds`."""
        first = len(self.seconds)
        time.sleep(seconds)
        return self.seconds[first:]


def config(settings: Settings) -> Path:
    """The settings as the command reads them."""
    folder = Path(settings.evidence.key_path).parent
    path = folder / "antirelou.toml"
    path.write_text(
        f'database_url = "{settings.database_url}"\n'
        f'[[lines]]\nnumber = "{LINE}"\n'
        f'[evidence]\nkey_path = "{settings.evidence.key_path}"\n',
        encoding="utf-8",
    )
    return path


def describe(label: str, times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return (
        f"  {label}: {len(ms):,} texts, median {percentile(ms, 50):.1f} ms, "
        f"p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms"
    )


def database_after(scenario: str, seed: int, folder: Path) -> Settings:
    """The replayed scenario's database, as a service's file (WAL mode, durable)."""
    texts, _truth = write_scenario(scenario, seed, folder, LINE)
    settings = settings_from_mapping(
        {
            "database_url": f"sqlite:///{folder}/antirelou.db",
            "lines": [{"number": LINE}],
            "evidence": {"key_path": str(folder / "evidence.key")},
            "budget": {"daily_cap": 1_000_000.0, "total": 10_000_000.0},
        }
    )
    run_replay(texts, settings, folder / "replay", timedelta(hours=24), progress=False)
    shutil.copyfile(folder / "replay" / "replay.db", folder / "antirelou.db")
    return settings


def timed_backup(service: Service, backup: Path) -> tuple[list[float], list[float], float, str]:
    """`antirelou db backup` while texts come in: their times before and during it, how
    long it took, and what it printed."""
    texts = Texts(service)
    texts.start()
    try:
        before = texts.over(2.0)
        first = len(texts.seconds)
        started = time.perf_counter()
        command = [
            ANTIRELOU,
            "db",
            "backup",
            "--config",
            str(config(service.settings)),
            str(backup),
        ]
        run = subprocess.run(command, capture_output=True, text=True, check=True, cwd=backup.parent)
        backup_s = time.perf_counter() - started
        during = texts.seconds[first:]
    finally:
        texts.stop.set()
        texts.join()
    return before, during, backup_s, run.stdout


def report(
    scenario: str, size: int, records: int, timed: tuple[list[float], list[float], float, str]
) -> None:
    before, during, backup_s, said = timed
    verified = "intact" if "OK: the copy's evidence log verifies" in said else "BROKEN"
    print(f"{scenario} replayed: {size / 1e6:.1f} MB backup, {records:,} evidence records")
    print(f"  db backup, a process of its own: {backup_s:.2f} s (chain {verified})")
    print(describe("texts received before the backup", before))
    print(describe("texts received during the backup", during))


def on_sqlite(scenario: str, settings: Settings, folder: Path) -> None:
    service = Service(settings, make_engine(settings.database_url), SystemClock())
    backup = folder / "backup.db"
    try:
        timed = timed_backup(service, backup)
    finally:
        service.dispose()
    started = time.perf_counter()
    restored = restore(settings, backup)
    restore_s = time.perf_counter() - started
    report(scenario, backup.stat().st_size, restored.evidence.records, timed)
    restored_chain = "intact" if restored.evidence.ok else "BROKEN"
    print(f"  db restore, the service stopped: {restore_s:.2f} s (chain {restored_chain})")


def copy_rows(source_url: str, target_url: str) -> int:
    """Every row of the SQLite database into a migrated PostgreSQL one; the evidence count."""
    source, target = make_engine(source_url), make_engine(target_url)
    migrate.upgrade(target)
    tables = models.metadata.sorted_tables
    with source.connect() as read, target.begin() as write:
        for table in reversed(tables):
            write.execute(delete(table))
        for table in tables:
            rows = [dict(row) for row in read.execute(select(table)).mappings()]
            for start in range(0, len(rows), 5000):
                write.execute(insert(table), rows[start : start + 5000])
            restart_sequence(write, table)
        evidence = models.metadata.tables["evidence_records"]
        records = int(write.execute(select(func.count()).select_from(evidence)).scalar_one())
    source.dispose()
    target.dispose()
    return records


def restart_sequence(conn: Connection, table: Table) -> None:
    """After rows copied with their ids, the next id is past them (NULL: no sequence)."""
    keys = list(table.primary_key.columns)
    if len(keys) != 1 or keys[0].type.python_type is not int:
        return
    (key,) = keys
    sequence = f"pg_get_serial_sequence('{table.name}', '{key.name}')"
    highest = f"coalesce((SELECT max({key.name}) FROM {table.name}), 1)"  # noqa: S608 - our tables
    conn.execute(text(f"SELECT setval({sequence}, {highest})"))


def on_postgres(scenario: str, replayed: Settings, folder: Path, server: str) -> None:
    with new_database(server) as live_url, new_database(server) as empty_url:
        started = time.perf_counter()
        records = copy_rows(replayed.database_url, live_url)
        print(f"  (rows copied into PostgreSQL in {time.perf_counter() - started:.1f} s)")
        settings = replayed.model_copy(update={"database_url": live_url})
        service = Service(settings, make_engine(live_url), SystemClock())
        backup = folder / "backup.dump"
        try:
            timed = timed_backup(service, backup)
        finally:
            service.dispose()
        target = replayed.model_copy(update={"database_url": empty_url})
        command = [ANTIRELOU, "db", "restore", "--config", str(config(target)), str(backup)]
        started = time.perf_counter()
        run = subprocess.run(command, capture_output=True, text=True, check=True, cwd=folder)
        restore_s = time.perf_counter() - started
        report(scenario + " on PostgreSQL", backup.stat().st_size, records, timed)
        restored_chain = (
            "intact" if "OK: the restored evidence log verifies" in run.stdout else "BROKEN"
        )
        print(f"  db restore into an empty database: {restore_s:.2f} s (chain {restored_chain})")


def main() -> int:
    args = scenario_arguments(__doc__, postgres=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = database_after(args.scenario, args.seed, folder)
        if args.postgres:
            on_postgres(args.scenario, settings, folder, args.postgres)
        else:
            on_sqlite(args.scenario, settings, folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
