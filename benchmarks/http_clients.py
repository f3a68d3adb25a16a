"""What one reply's HTTP call costs the sending process: httpx against providers/wire.py.

    .venv/bin/python benchmarks/http_clients.py [--requests 300] [--threads 8,1]

A fake Twilio Messages API (a process of its own, answering at once) takes form POSTs from
THREADS threads at a time, as the worker's sending threads make them; printed per client:
the CPU this process spent per request (user + system, all threads) and the requests per
second. The fake's own CPU is not counted. This is what decided the reply path's client
(docs/load.md): during a flood the sends share two cores with the webhooks.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import threading
import time
from collections.abc import Callable

import httpx
from benchkit import ACCOUNT_SID, free_port, serve_fake_twilio, wait_until_up

from antirelou.providers.wire import Wire

PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
FORM = {
    "To": "+33612345678",
    "From": "+33939000021",
    "Body": "Bonjour. Ce numero est un refus : la personne qui vous l'a donne ne souhaitait pas "
    "etre contactee. Non, c'est non. Merci de ne pas insister.",
    "StatusCallback": "https://decoy.example.org/webhooks/twilio/status",
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(post: Callable[[], object], threads: int, requests: int) -> tuple[float, float]:
    """(CPU ms per request, requests per second) for `requests` calls from each thread."""
    for _ in range(20):
        post()  # connections opened, code warm
    cpu, wall = cpu_seconds(), time.perf_counter()
    workers = [
        threading.Thread(target=lambda: [post() for _ in range(requests)]) for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    total = threads * requests
    return (cpu_seconds() - cpu) / total * 1000, total / (time.perf_counter() - wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="per thread (300)")
    parser.add_argument("--threads", default="8,1", help="comma list (8,1)")
    args = parser.parse_args()
    port = free_port()
    fake = multiprocessing.Process(target=serve_fake_twilio, args=(port,), daemon=True)
    fake.start()
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base)
    auth = (ACCOUNT_SID, "bench-token")
    client = httpx.Client(auth=auth, headers={"Accept": "application/json"}, timeout=10)
    wire = Wire(base, timeout=10, headers={"Accept": "application/json"}, basic_auth=auth)
    clients: dict[str, Callable[[], object]] = {
        "httpx": lambda: client.post(base + PATH, data=FORM).json(),
        "wire (the reply path's)": lambda: wire.post_form(PATH, FORM).json_object(),
    }
    print(f"{'client':26s} {'threads':>7s} {'CPU ms/request':>15s} {'requests/s':>11s}")
    try:
        for threads in (int(t) for t in args.threads.split(",")):
            for name, post in clients.items():
                cpu, rate = measure(post, threads, args.requests)
                print(f"{name:26s} {threads:7d} {cpu:15.3f} {rate:11.0f}")
    finally:
        client.close()
        wire.close()
        fake.kill()


if __name__ == "__main__":
    main()
