"""The report's timeline: texts per time bucket, flagged ones in red, incidents in grey."""

from __future__ import annotations

import io
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

BUCKETS = (
    ("minute", timedelta(minutes=1), timedelta(hours=2)),
    ("10min", timedelta(minutes=10), timedelta(hours=12)),
    ("hour", timedelta(hours=1), timedelta(days=7)),
    ("day", timedelta(days=1), timedelta.max),
)


def bucket_for(first: datetime, last: datetime) -> tuple[str, timedelta]:
    """The coarsest bucket that still shows the shape of the span."""
    span = last - first
    for name, size, longest in BUCKETS:
        if span <= longest:
            return name, size
    return BUCKETS[-1][0], BUCKETS[-1][1]


def _floor(when: datetime, size: timedelta, zone: ZoneInfo) -> datetime:
    local = when.astimezone(zone).replace(tzinfo=None)
    seconds = int(size.total_seconds())
    epoch = datetime(2000, 1, 1)
    return epoch + timedelta(seconds=int((local - epoch).total_seconds()) // seconds * seconds)


def timeline_png(
    times: list[datetime],
    flagged: list[datetime],
    incidents: list[tuple[datetime, datetime]],
    zone: ZoneInfo,
    labels: tuple[str, str],
) -> tuple[bytes, str]:
    """A PNG bar chart of the texts over time, and the bucket name used."""
    name, size = bucket_for(min(times), max(times))
    every = Counter(_floor(t, size, zone) for t in times)
    red = Counter(_floor(t, size, zone) for t in flagged)
    figure = Figure(figsize=(9, 3.2), dpi=150)
    axes = figure.add_subplot()
    for start, end in incidents:
        axes.axvspan(_num(_local(start, zone)), _num(_local(end, zone)), color="0.85")
    width = size / timedelta(days=1) * 0.9
    keys = sorted(every)
    xs = [_num(x) for x in keys]
    axes.bar(
        xs, [every[x] for x in keys], width=width, align="edge", color="#4c72b0", label=labels[0]
    )
    axes.bar(
        xs, [red[x] for x in keys], width=width, align="edge", color="#c44e52", label=labels[1]
    )
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    axes.legend(loc="upper left", frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    out = io.BytesIO()
    FigureCanvasAgg(figure).print_png(out)  # type: ignore[no-untyped-call]
    return out.getvalue(), name


def _local(when: datetime, zone: ZoneInfo) -> datetime:
    return when.astimezone(zone).replace(tzinfo=None)


def _num(when: datetime) -> float:
    """matplotlib's number for a (naive, local) time."""
    return float(date2num(when))  # type: ignore[no-untyped-call]
