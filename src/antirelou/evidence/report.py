"""report.pdf: what a lawyer or the police read first (French by default, English on request).

Summary, timeline chart, senders ranked by volume, most repeated texts, the first texts as
received, how the data was collected, how to verify it, and a neutral note on the
offences it may relate to. Fonts are DejaVu (shipped with matplotlib), embedded; glyphs
they lack (most emoji) are shown as □: the exact texts are in messages.jsonl.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import matplotlib
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from antirelou.evidence.chart import timeline_png
from antirelou.evidence.summary import Summary
from antirelou.evidence.wording import REPORT

FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
MISSING = "□"


@dataclass(frozen=True)
class Context:
    """What the report says about the bundle beyond the texts themselves."""

    selection: str
    made: datetime
    zone: ZoneInfo
    first_seq: int
    last_seq: int
    records: int
    checkpoints: int
    stamped: int
    checkpoint_seq: int
    checkpoint_hash: str
    checkpoint_at: datetime
    fingerprint: str
    tsa: bool


@functools.cache
def _glyphs() -> frozenset[int]:
    return frozenset(TTFont(FONTS / "DejaVuSans.ttf").getBestCmap())


def clean(text: str, limit: int | None = None) -> str:
    """Text the embedded font can draw: controls become spaces, unknown glyphs □."""
    glyphs = _glyphs()
    drawn = "".join(
        " " if ch in "\r\n\t" or ord(ch) < 32 else ch if ord(ch) in glyphs else MISSING
        for ch in text
    )
    if limit is not None and len(drawn) > limit:
        return drawn[: limit - 1] + "…"
    return drawn


class _Pdf(FPDF):
    page_label = "Page {page}"

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("DejaVu", size=8)
        self.cell(0, 8, text=self.page_label.format(page=self.page_no()), align="C")


def render(summary: Summary, context: Context, lang: str = "fr") -> bytes:
    """The report as PDF bytes."""
    words = REPORT[lang]
    pdf = _new_pdf(words, context)
    _title(pdf, words, context)
    _summary(pdf, words, summary, context)
    _timeline(pdf, words, summary, context)
    _incidents(pdf, words, summary, context)
    _ranked(pdf, words, summary, context)
    _repeated(pdf, words, summary)
    _excerpts(pdf, words, summary, context)
    _prose(
        pdf, words["method"], words["method_text"].format(tsa=words["tsa"] if context.tsa else "")
    )
    _prose(pdf, words["verify"], words["verify_text"])
    _prose(pdf, words["law"], words["law_text"])
    return bytes(pdf.output())


def _new_pdf(words: dict[str, str], context: Context) -> _Pdf:
    pdf = _Pdf(format="A4")
    pdf.page_label = words["page"]
    pdf.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_creation_date(context.made)
    pdf.set_title(words["title"])
    pdf.set_creator("antirelou")
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.set_margins(15, 15, 15)
    pdf.add_page()
    return pdf


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(3)
    pdf.set_font("DejaVu", "B", 12)
    pdf.multi_cell(0, 7, text=text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", size=9)


def _para(pdf: FPDF, text: str) -> None:
    pdf.multi_cell(0, 5, text=clean(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _prose(pdf: FPDF, title: str, text: str) -> None:
    _heading(pdf, title)
    _para(pdf, text)


def _title(pdf: FPDF, words: dict[str, str], context: Context) -> None:
    pdf.set_font("DejaVu", "B", 15)
    pdf.multi_cell(0, 8, text=words["title"], align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", size=9)
    made = f"{context.made:%Y-%m-%d %H:%M}"
    _para(pdf, words["subtitle"].format(selection=context.selection, made=made))


def _local(when: datetime | None, zone: ZoneInfo) -> str:
    return "—" if when is None else when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _summary(pdf: FPDF, words: dict[str, str], summary: Summary, context: Context) -> None:
    _heading(pdf, words["summary"])
    zone_name = str(context.zone)
    rows = [
        (
            words["period"],
            f"{_local(summary.first, context.zone)} → "
            f"{_local(summary.last, context.zone)} ({zone_name})",
        ),
        (words["lines"], ", ".join(sorted(summary.lines)) or words["none"]),
        (words["texts"], f"{summary.texts:,}".replace(",", " ")),
        (words["senders"], f"{len(summary.senders):,}".replace(",", " ")),
        (words["flagged"], f"{len(summary.flagged_times):,}".replace(",", " ")),
        (words["replies"], str(summary.replies)),
        (words["calls"], str(summary.calls)),
        (words["incidents"], str(len(summary.incidents))),
        (words["purged"], str(summary.purged)),
        (words["unsigned"], str(summary.unsigned)),
    ]
    _table(pdf, rows, (110, 70))
    _heading(pdf, words["chain"])
    _para(
        pdf,
        words["chain_text"].format(
            records=context.records,
            first=context.first_seq,
            last=context.last_seq,
            checkpoints=context.checkpoints,
            cp_seq=context.checkpoint_seq,
            cp_hash=context.checkpoint_hash,
            cp_at=f"{context.checkpoint_at:%Y-%m-%d %H:%M:%S}",
            stamped=context.stamped,
        ),
    )
    _para(pdf, words["key"].format(fingerprint=context.fingerprint))


def _table(
    pdf: FPDF, rows: Sequence[Sequence[str]], widths: tuple[int, ...], head: str = ""
) -> None:
    pdf.set_font("DejaVu", size=8)
    with pdf.table(col_widths=widths, first_row_as_headings=bool(head), line_height=4.5) as table:
        if head:
            table.row(head.split("|"))
        for row in rows:
            table.row([clean(cell) for cell in row])
    pdf.set_font("DejaVu", size=9)


def _timeline(pdf: FPDF, words: dict[str, str], summary: Summary, context: Context) -> None:
    if not summary.times:
        return
    _heading(pdf, words["timeline"])
    spans = [
        (i.opened_at, i.closed_at or summary.last or i.opened_at)
        for i in summary.incidents.values()
    ]
    png, bucket = timeline_png(
        summary.times,
        summary.flagged_times,
        spans,
        context.zone,
        (words["chart_all"], words["chart_flagged"]),
    )
    pdf.image(io.BytesIO(png), w=180)
    _para(pdf, words["timeline_caption"].format(bucket=words[bucket]))


def _incidents(pdf: FPDF, words: dict[str, str], summary: Summary, context: Context) -> None:
    if not summary.incidents:
        return
    _heading(pdf, words["incident_list"])
    for incident in sorted(summary.incidents.values(), key=lambda i: i.id):
        closed = (
            words["closed_at"].format(closed=_local(incident.closed_at, context.zone))
            if incident.closed_at
            else words["still_open"]
        )
        _para(
            pdf,
            words["incident_row"].format(
                id=incident.id,
                line=incident.line,
                opened=_local(incident.opened_at, context.zone),
                closed=closed,
                signals=", ".join(incident.signals) or words["none"],
            ),
        )


def _ranked(pdf: FPDF, words: dict[str, str], summary: Summary, context: Context) -> None:
    if not summary.senders:
        return
    _heading(pdf, words["ranked"])
    rows = [
        (
            number,
            str(f.texts),
            str(f.flagged),
            _local(f.first, context.zone),
            _local(f.last, context.zone),
        )
        for number, f in summary.ranked_senders()
    ]
    _table(pdf, rows, (45, 20, 20, 47, 47), words["ranked_head"])


def _repeated(pdf: FPDF, words: dict[str, str], summary: Summary) -> None:
    repeated = summary.repeated_texts()
    if not repeated:
        return
    _heading(pdf, words["repeated"])
    rows = [(clean(body, 160), str(n), str(senders)) for body, n, senders in repeated]
    _table(pdf, rows, (130, 20, 30), words["repeated_head"])


def _excerpts(pdf: FPDF, words: dict[str, str], summary: Summary, context: Context) -> None:
    if not summary.excerpts:
        return
    _heading(pdf, words["excerpts"])
    rows = [
        (_local(at, context.zone), sender, clean(body, 240))
        for at, sender, body in summary.excerpts
    ]
    _table(pdf, rows, (35, 35, 110), words["excerpts_head"])
