"""The evidence chores of the worker's tick: checkpoints, timestamps, daily retention.

Each chore logs its own failure and lets the others run: a missing timestamp authority
or an unreadable key must never stop replies from going out.
"""

from __future__ import annotations

import logging
from datetime import datetime

from antirelou.service import Service

log = logging.getLogger(__name__)


def tick(service: Service, now: datetime) -> None:
    """Called by `Worker.tick` (every 15 s at most); cheap when there is nothing to do."""
    from antirelou.evidence import checkpoints, retention

    for chore in (checkpoints.maybe_checkpoint, retention.maybe_run):
        try:
            chore(service, now)
        except Exception:
            log.exception("evidence chore %s failed; it runs again next tick", chore.__name__)
