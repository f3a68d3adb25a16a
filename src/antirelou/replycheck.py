"""`antirelou lines check`: what a line's reply costs, and how to make it cheaper."""

from __future__ import annotations

from antirelou.encoding import Encoding, gsm7_rewrite, segment
from antirelou.settings import LineSettings


def describe_line(line: LineSettings, price_per_segment: float) -> str:
    """A short report on one line's reply, with a GSM-7 rewrite when it needs UCS-2."""
    measured = segment(line.reply)
    cost = measured.segments * price_per_segment
    lines = [
        f"{line.number} ({line.provider}, {line.language})",
        f"  reply: {line.reply}",
        f"  encoding {measured.encoding.value}, {measured.units} units, "
        f"{measured.segments} segment(s), {cost:.4f} EUR per reply, "
        f"{cost * 1000:.2f} EUR per 1,000 senders",
    ]
    if measured.segments > 1:
        lines.append("  warning: more than one segment; every reply costs that many SMS")
    if measured.encoding is Encoding.UCS2:
        lines += _rewrite_advice(line.reply, measured.offending, price_per_segment)
    return "\n".join(lines)


def _rewrite_advice(reply: str, offending: tuple[str, ...], price: float) -> list[str]:
    rewrite = gsm7_rewrite(reply)
    better = segment(rewrite)
    chars = " ".join(repr(c) for c in offending)
    return [
        f"  needs UCS-2 because of: {chars}",
        f"  GSM-7 rewrite ({better.segments} segment(s), {better.segments * price:.4f} EUR):",
        f"    {rewrite}",
    ]
