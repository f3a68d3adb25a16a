"""What the webhook benchmarks share: a Twilio inbound form as Twilio posts it, ports,
per-process CPU time, percentiles. Imported by benchmarks/load.py and webhook.py (run as
scripts, so this folder is on the path)."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path

LINE = "+33939000021"
ACCOUNT_SID = "AC" + "0" * 32


def inbound_form(sid: str, sender: str, text_body: str) -> list[tuple[str, str]]:
    """The parameters Twilio posts for an inbound SMS, in its usual order."""
    return [
        ("ToCountry", "FR"),
        ("ToState", ""),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("ToCity", ""),
        ("FromZip", ""),
        ("SmsSid", sid),
        ("FromState", ""),
        ("SmsStatus", "received"),
        ("FromCity", ""),
        ("Body", text_body),
        ("FromCountry", "FR"),
        ("To", LINE),
        ("ToZip", ""),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", sender),
        ("ApiVersion", "2010-04-01"),
    ]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc (0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]
