"""Provider call metrics, measured where the worker talks to providers.

These live in the memory of the process that runs the worker: `/metrics` shows them when
that process also serves the web app (`antirelou serve`, one web process: the default).
With `antirelou serve --workers N` the worker runs in the parent process and the web
processes are its children: the parent then sets PROMETHEUS_MULTIPROC_DIR (before any
metric exists) and every web process adds the parent's figures from that directory. A
separate `antirelou worker` process is seen the same way when it shares that directory
(same machine, same PROMETHEUS_MULTIPROC_DIR); otherwise its figures are not exported.

Everything else (texts, decisions, replies, spend, incidents, the queue) is read from the
database at scrape time (web/metrics.py), so it is right whatever the number of processes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, values

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class ProviderMetrics:
    registry: CollectorRegistry
    latency: Histogram
    errors: Counter


_metrics: ProviderMetrics | None = None
_lock = threading.Lock()


def multiprocess_dir() -> str | None:
    path = os.environ.get(MULTIPROC_ENV, "")
    return path if path and os.path.isdir(path) else None


def provider_metrics() -> ProviderMetrics:
    """Made on first use, so that a PROMETHEUS_MULTIPROC_DIR set by `serve` is honoured."""
    global _metrics
    with _lock:
        if _metrics is None:
            if multiprocess_dir() and values.ValueClass is values.MutexValue:
                # prometheus_client was imported before the variable was set
                values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
            registry = CollectorRegistry(auto_describe=True)
            latency = Histogram(
                "antirelou_provider_request_seconds",
                "Time taken by provider API calls made by the worker (this process).",
                ["provider", "operation"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            )
            errors = Counter(
                "antirelou_provider_errors",
                "Provider API calls that failed, by kind (transient, permanent, unexpected) "
                "and the provider's or our error code.",
                ["provider", "operation", "kind", "code"],
                registry=registry,
            )
            _metrics = ProviderMetrics(registry, latency, errors)
        return _metrics


@contextmanager
def provider_call(provider: str, operation: str) -> Iterator[None]:
    """Time one provider call (send, find_sent) and count its failure, if any."""
    from antirelou.providers.base import SendError

    metrics = provider_metrics()
    started = time.perf_counter()
    try:
        yield
    except SendError as error:
        kind = "transient" if error.transient else "permanent"
        metrics.errors.labels(provider, operation, kind, (error.code or "")[:32]).inc()
        raise
    except Exception:
        metrics.errors.labels(provider, operation, "unexpected", "").inc()
        raise
    finally:
        metrics.latency.labels(provider, operation).observe(time.perf_counter() - started)
