"""report.pdf renders (pdftoppm), says what it must in French and English, and the docs
show it."""

from __future__ import annotations

import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from antirelou import migrate
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.evidence import bundle
from antirelou.evidence.report import clean
from antirelou.evidence.selection import Selection
from antirelou.service import Service
from tests.evidence_kit import evidence_service, have, open_incident, quiet_hour, raid

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture
def ev(tmp_path: Path, clock: VirtualClock) -> Iterator[Service]:
    url = f"sqlite:///{tmp_path / 'ev.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    service = evidence_service(url, clock, tmp_path)
    quiet_hour(service, clock, 4)
    open_incident(service)
    raid(service, clock)
    yield service
    service.dispose()


def report_of(service: Service, folder: Path, lang: str) -> Path:
    out = folder / f"{lang}.zip"
    bundle.export(service, Selection(everything=True), out, lang)
    pdf = folder / f"report-{lang}.pdf"
    with zipfile.ZipFile(out) as archive:
        pdf.write_bytes(archive.read("report.pdf"))
    return pdf


def pdf_text(pdf: Path) -> str:
    done = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True)
    return " ".join(done.stdout.decode().split())


@pytest.mark.skipif(not (have("pdftoppm") and have("pdftotext")), reason="poppler-utils")
def test_the_report_renders_in_french_by_default(ev: Service, tmp_path: Path) -> None:
    pdf = report_of(ev, tmp_path, "fr")
    subprocess.run(
        ["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
        check=True,
    )
    png = tmp_path / "page-1.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    words = pdf_text(pdf)
    for expected in ("Dossier de preuves", "Chronologie", "Expéditeurs classés par volume",
                     "Comment vérifier", "222-33-2-2", "222-16", "+33699000001"):  # fmt: skip
        assert expected in words


@pytest.mark.skipif(not have("pdftotext"), reason="poppler-utils")
def test_the_report_speaks_english_on_request(ev: Service, tmp_path: Path) -> None:
    words = pdf_text(report_of(ev, tmp_path, "en"))
    for expected in ("Evidence bundle", "Timeline", "Senders ranked by volume", "222-16"):
        assert expected in words


def test_glyphs_the_font_lacks_are_replaced() -> None:
    assert clean("a\tb\u0007c") == "a b c"
    assert clean("é ☺ 𝔘") == "é ☺ □"
    assert clean("x" * 10, limit=5) == "xxxx…"


def test_the_docs_show_the_rendered_report() -> None:
    page = (DOCS / "evidence.md").read_text()
    assert "img/evidence-report-1.png" in page
    assert (DOCS / "img" / "evidence-report-1.png").read_bytes()[:4] == b"\x89PNG"
