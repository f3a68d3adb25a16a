"""4 web processes and 2 workers on one PostgreSQL database, 10,000 webhooks at once.

What only the database can guarantee, checked with real processes and real HTTP: the same
MessageSid delivered to two processes at the same instant is stored once; a sender whose
texts land on four processes at once is answered once; two workers never send one reply
twice; the daily cap, binding for the last part of the run, is never passed by a single
reply; the money spent is exactly what the replies cost.

PostgreSQL only (TEST_POSTGRES_URL): SQLite serialises writers by design, and the same
guarantees are checked on it with fewer processes in test_faults.py.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.fakes.twilio_api import FakeTwilio
from tests.procs import (
    REPLY_COST_MICROS,
    Fleet,
    Webhook,
    check_books,
    deliver,
    french_mobiles,
    message_sid,
    read_books,
    wait_for,
    wait_healthy,
    webhook,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

WEB_PROCESSES = 4
WORKERS = 2
WEBHOOKS = 10_000
ONE_TEXT, FEW_TEXTS, MANY_TEXTS = 4_000, 1_000, 10  # senders texting 1, 3 and 100 times
DUPLICATES = WEBHOOKS - ONE_TEXT - 3 * FEW_TEXTS - 100 * MANY_TEXTS  # sids delivered again
CAP_REPLIES = 3_000  # of 5,010 senders: the cap binds for the last ~40% of the run
BODIES = (
    "Salut, c'est Karim du bar, tu te souviens de moi ?",
    "T'es où ? Je t'attends devant.",
    "On se voit ce soir ?",
    "Allô ? Réponds stp",
    "Coucou 😘",
    "Tu m'as donné un faux numéro ou quoi",
)


def mixed_traffic(rng: random.Random) -> list[Webhook]:
    """Senders texting once, three times and a hundred times, interleaved at random, and
    2,000 Twilio re-deliveries of a sid, some right next to the first delivery."""
    numbers = french_mobiles(ONE_TEXT + FEW_TEXTS + MANY_TEXTS)
    texts = (
        numbers[:ONE_TEXT]
        + numbers[ONE_TEXT : ONE_TEXT + FEW_TEXTS] * 3
        + numbers[ONE_TEXT + FEW_TEXTS :] * 100
    )
    rng.shuffle(texts)
    hooks = [
        webhook(message_sid(i, "c"), sender, rng.choice(BODIES)) for i, sender in enumerate(texts)
    ]
    for _ in range(DUPLICATES):
        position = rng.randrange(len(hooks))
        hooks.insert(min(len(hooks), position + rng.randrange(1, 40)), hooks[position])
    assert len(hooks) == WEBHOOKS
    return hooks


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("intake", ["inline", "queued"])
def test_four_web_processes_and_two_workers_reply_once_per_sender_within_the_cap(
    tmp_path: Path, database_url: str, intake: str
) -> None:
    hooks = mixed_traffic(random.Random(7))
    senders = {hook.sender for hook in hooks}
    daily_cap = (CAP_REPLIES + 0.5) * REPLY_COST_MICROS / 1_000_000
    with FakeTwilio(account_sid="AC" + "0" * 32, auth_token="fault-token") as fake:
        config = write_config(
            tmp_path / "antirelou.toml",
            database_url=database_url,
            twilio_url=fake.base_url,
            daily_cap=daily_cap,
            worker={"lease": "30s"},
            web={"intake": intake},  # queued: the workers decide the texts too
        )
        with Fleet(tmp_path, config) as fleet:
            webs = [fleet.web(wait=False) for _ in range(WEB_PROCESSES)]
            for _ in range(WORKERS):
                fleet.worker()
            for web in webs:
                wait_healthy(web)
            deliveries = deliver([web.base_url for web in webs], hooks, concurrency=32)
            assert deliveries.tally() == {200: WEBHOOKS}, deliveries.tally()
            wait_for(
                lambda: (
                    len(fake.messages) >= CAP_REPLIES
                    and not read_books(database_url).parked
                    and not read_books(database_url).open_replies()
                ),
                300,
                "the workers to send every reply",
                step=0.5,
            )
            assert all(proc.alive() for proc in fleet.procs), fleet.logs()
            fleet.evidence_verifies()
        books = read_books(database_url)
        sent_to = [str(message["to"]) for message in fake.messages]

    assert books.sids == {hook.sid for hook in hooks}
    check_books(books, sent_to, daily_cap_micros=round(daily_cap * 1_000_000))
    assert len(sent_to) == CAP_REPLIES, "as many replies as the cap allows, not one more"
    assert len(fake.requests) == CAP_REPLIES, "no send was even attempted twice"
    answered = set(sent_to)
    assert answered <= senders
    for sender in senders - answered:
        reasons = books.first_reasons[sender]
        assert "daily_cap_reached" in reasons, (sender, reasons)
