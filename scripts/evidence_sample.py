"""Make docs/img/evidence-report-1.png: a sample bundle's report.pdf, page 1.

    .venv/bin/python scripts/evidence_sample.py [--out docs/img]

Builds a throwaway SQLite database on a virtual clock (an evening like 30 October 2017:
ordinary texts, then a raid from a run of numbers inside an incident), exports the
incident's bundle in French and renders the report's first page with pdftoppm.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import tempfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from antirelou import migrate, models
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.evidence import bundle, checkpoints, hooks
from antirelou.evidence.selection import Selection
from antirelou.evidence.settings import EvidenceSettings
from antirelou.evidence.tables import evidence_records
from antirelou.inbound import receive
from antirelou.operations import close_incident, open_incident
from antirelou.providers.base import InboundSms
from antirelou.service import Service
from antirelou.settings import Settings, settings_from_mapping

LINE = "+33939000021"
ORDINARY = ("Salut, c'est Karim du bar", "Tu m'as donné un faux numéro ?", "On se voit ce soir ?")
RAID = ("ferme ta gueule", "on va vider ta cagnotte lol", "SALOPE", "féministe de merde 😂")


class _Settings(Settings):
    evidence: EvidenceSettings = EvidenceSettings()


def _service(folder: Path, clock: VirtualClock) -> Service:
    url = f"sqlite:///{folder / 'sample.db'}"
    engine = make_engine(url, durable=False)
    migrate.upgrade(engine)
    base = settings_from_mapping({"database_url": url, "lines": [{"number": LINE}]})
    data = {**base.model_dump(), "evidence": {"key_path": str(folder / "evidence.key")}}
    service = Service(_Settings.model_validate(data), engine, clock)
    service.sync_lines()
    return service


def _text(service: Service, n: int, sender: str, body: str) -> None:
    sms = InboundSms("twilio", f"SM{n:032x}", sender, LINE, body, {"Body": body}, True)
    receipt = receive(service, sms)
    with service.engine.begin() as conn:
        ref = f"message:{receipt.message_id}"
        if conn.execute(
            select(evidence_records.c.seq).where(evidence_records.c.ref == ref)
        ).first():
            return  # receive() already records it (hooks applied)
        m = models.messages
        labels = json.loads(
            conn.execute(select(m.c.signals).where(m.c.id == receipt.message_id)).scalar_one()
        )
        now = service.clock.now()
        hooks.inbound(
            conn, sms, receipt.message_id, receipt.decision, receipt.incident_id, now, labels
        )


def build(folder: Path) -> tuple[Service, int]:
    rng = random.Random(2017)  # noqa: S311 - a fixed sample, not a secret
    clock = VirtualClock(datetime(2017, 10, 30, 13, 0, tzinfo=UTC))
    service = _service(folder, clock)
    n = 0
    for _ in range(60):
        clock.advance(timedelta(seconds=rng.randint(20, 90)))
        n += 1
        _text(service, n, f"+3361{rng.randrange(10**7):07d}", rng.choice(ORDINARY))
        checkpoints.maybe_checkpoint(service, clock.now())
    incident = open_incident(service, LINE, "collectif", "raid depuis un forum")
    with service.engine.begin() as conn:
        hooks.incidents(conn, [incident], [], clock.now())
    for _ in range(900):
        clock.advance(timedelta(seconds=rng.choice((1, 1, 2, 3, 5))))
        n += 1
        _text(service, n, f"+336990{rng.randrange(300):05d}", rng.choice(RAID))
        checkpoints.maybe_checkpoint(service, clock.now())
    close_incident(service, incident, "collectif")
    with service.engine.begin() as conn:
        if not conn.execute(
            select(evidence_records.c.seq).where(evidence_records.c.kind == "incident_closed")
        ).first():
            hooks.incidents(conn, [], [incident], clock.now())
    return service, incident


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        service, incident = build(Path(folder))
        out = Path(folder) / "incident.zip"
        bundle.export(service, Selection(incident=incident), out)
        pdf = Path(folder) / "report.pdf"
        with zipfile.ZipFile(out) as archive:
            pdf.write_bytes(archive.read("report.pdf"))
        args.out.mkdir(parents=True, exist_ok=True)
        target = args.out / "evidence-report"
        command = ["pdftoppm", "-png", "-r", "90", "-f", "1", "-l", "2", str(pdf), str(target)]
        subprocess.run(command, check=True)  # noqa: S603 - our own arguments, pdftoppm from PATH
        service.dispose()
    print(f"wrote {target}-1.png and {target}-2.png")


if __name__ == "__main__":
    main()
