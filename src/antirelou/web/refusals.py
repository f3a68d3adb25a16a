"""Logging refused webhooks without letting a forged flood flood the logs.

A forged-signature flood is an attack on the service itself: one warning per refused
request would write thousands of lines a second (disk, log shipping, the operators'
attention). The first refusal of each kind is logged at once; after that, one line a
minute says how many more there were. /metrics has the exact counts.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

log = logging.getLogger("antirelou.web.refused")

SUMMARY_EVERY = 60.0  # seconds


@dataclass
class _Tally:
    since: float
    count: int = 0


_tallies: dict[tuple[str, str], _Tally] = {}
_lock = threading.Lock()


def refused(provider: str, reason: str, now: float | None = None) -> None:
    """Note one refused request; log it if it is the first of its kind in a while."""
    moment = time.monotonic() if now is None else now
    key = (provider, reason)
    with _lock:
        tally = _tallies.get(key)
        if tally is None:
            _tallies[key] = _Tally(moment)
            first = True
        else:
            tally.count += 1
            first = False
            if moment - tally.since < SUMMARY_EVERY:
                return
            more, _tallies[key] = tally.count, _Tally(moment)
    if first:
        log.warning("refused a %s request: %s", provider, reason)
    else:
        log.warning(
            "refused %d more %s requests in the last %.0f s: %s",
            more,
            provider,
            SUMMARY_EVERY,
            reason,
        )


def reset() -> None:
    """Forget the tallies (tests)."""
    with _lock:
        _tallies.clear()
