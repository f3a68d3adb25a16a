"""What one reply costs the sending process, provider by provider, through each adapter.

    .venv/bin/python benchmarks/adapters.py [--replies 300] [--threads 8,1]

benchmarks/http_clients.py measured the HTTP client alone, on Twilio's request. This runs
each adapter's whole `send()`: the request built as that provider wants it (Twilio's and
Vonage's forms, Plivo's and the Android gateway's JSON, each with its authentication), sent
over providers/wire.py, and the answer read into a SendResult. A fake API (a process of its
own, so its CPU is not counted) answers each provider's send endpoint at once, with the
shape of its real success answer. Printed per adapter and thread count: the CPU this
process spent per reply (user + system, every thread), replies per second, and whether
every reply came back accepted with a provider id. Exit status 1 if one did not.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import secrets
import sys
import threading
import time
from collections.abc import Callable

from benchkit import ACCOUNT_SID, LINE, free_port, wait_until_up

from antirelou.providers.android import AndroidSender
from antirelou.providers.base import OutgoingSms, Sender, SendResult
from antirelou.providers.plivo import PlivoSender
from antirelou.providers.twilio import TwilioSender
from antirelou.providers.vonage import VonageSender

PLIVO_AUTH_ID = "MA" + "0" * 18
REPLY = (
    "Bonjour. Ce numero est un refus : la personne qui vous l'a donne ne souhaitait pas "
    "etre contactee. Non, c'est non. Merci de ne pas insister."
)
CALLBACK = "https://decoy.example.org/webhooks/status"


def serve_fake_providers(port: int) -> None:
    """Each provider's send endpoint, answering at once as the real one does on success."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    async def twilio(request: Request) -> Response:
        form = await request.form()
        sid = "SM" + secrets.token_hex(16)
        answer = {"sid": sid, "to": form.get("To"), "status": "queued", "num_segments": "1"}
        return JSONResponse(answer | {"price": None, "price_unit": "EUR"}, status_code=201)

    async def vonage(request: Request) -> Response:
        form = await request.form()
        message = {"to": form.get("to"), "message-id": secrets.token_hex(16), "status": "0"}
        message |= {"remaining-balance": "12.3", "message-price": "0.0678", "network": "20810"}
        return JSONResponse({"message-count": "1", "messages": [message]})

    async def plivo(request: Request) -> Response:
        await request.json()
        answer = {"api_id": secrets.token_hex(8), "message": "message(s) queued"}
        return JSONResponse(answer | {"message_uuid": [secrets.token_hex(16)]}, status_code=202)

    async def android(request: Request) -> Response:
        sent = await request.json()
        recipients = [{"phoneNumber": n, "state": "Pending"} for n in sent["phoneNumbers"]]
        answer = {"id": sent["id"], "state": "Pending", "recipients": recipients}
        return JSONResponse(answer, status_code=202)

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    routes = [
        Route(f"/twilio/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", twilio, methods=["POST"]),
        Route("/vonage/sms/json", vonage, methods=["POST"]),
        Route(f"/plivo/v1/Account/{PLIVO_AUTH_ID}/Message/", plivo, methods=["POST"]),
        Route("/android/message", android, methods=["POST"]),
        Route("/healthz", healthz),
    ]
    app = Starlette(routes=routes)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def adapters(base: str) -> dict[str, Sender]:
    return {
        "twilio": TwilioSender(ACCOUNT_SID, "bench-token", api_base_url=f"{base}/twilio"),
        "vonage": VonageSender("key", "secret", api_base_url=f"{base}/vonage", currency="EUR"),
        "plivo": PlivoSender(PLIVO_AUTH_ID, "bench-token", api_base_url=f"{base}/plivo"),
        "android": AndroidSender(f"{base}/android", "sms", "bench-password"),
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(
    send: Callable[[int], SendResult], threads: int, replies: int
) -> tuple[float, float, int]:
    """(CPU ms per reply, replies per second, replies accepted) for `replies` sends from
    each of `threads` threads."""
    for reference in range(20):
        send(reference)  # connections opened, code warm
    accepted = [0] * threads

    def run(index: int) -> None:
        for n in range(replies):
            result = send(1_000_000 * (index + 1) + n)
            accepted[index] += bool(result.provider_message_id)

    cpu, wall = cpu_seconds(), time.perf_counter()
    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed, sends = time.perf_counter() - wall, threads * replies
    return (cpu_seconds() - cpu) / sends * 1000, sends / elapsed, sum(accepted)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=300, help="per thread (300)")
    parser.add_argument("--threads", default="8,1", help="comma list (8,1)")
    args = parser.parse_args()
    port = free_port()
    fake = multiprocessing.Process(target=serve_fake_providers, args=(port,), daemon=True)
    fake.start()
    base = f"http://127.0.0.1:{port}"
    senders = adapters(base)
    failed = False
    print(f"{'adapter':9s} {'threads':>7s} {'CPU ms/reply':>13s} {'replies/s':>10s} accepted")
    try:
        wait_until_up(base)
        for threads in (int(t) for t in args.threads.split(",")):
            for name, sender in senders.items():

                def send(reference: int, sender: Sender = sender) -> SendResult:
                    sms = OutgoingSms(reference, LINE, "+33612345678", REPLY, CALLBACK)
                    return sender.send(sms)

                cpu, rate, accepted = measure(send, threads, args.replies)
                wanted = threads * args.replies
                failed |= accepted != wanted
                print(f"{name:9s} {threads:7d} {cpu:13.3f} {rate:10.0f} {accepted}/{wanted}")
    finally:
        for sender in senders.values():
            sender.close()
        fake.kill()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
