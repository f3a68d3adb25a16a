"""Long inbound texts delivered part by part: one message, one decision, whatever happens."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from antirelou import models
from antirelou.clock import VirtualClock
from antirelou.inbound import receive
from antirelou.providers import multipart
from antirelou.providers.multipart import MISSING, Part
from antirelou.service import Service
from tests.helpers import LINE, count, replies

SENDER = "+33612345678"
WORDS = ["Salut ma belle, ", "tu ne réponds pas ", "à mes messages ?"]
_ids = itertools.count(1)


def parts(ref: str = "107", words: list[str] = WORDS, sender: str = SENDER) -> list[Part]:
    """A long text's parts, each with its own provider id, as Vonage sends them."""
    return [
        Part(
            provider="sandbox",
            part_id=f"0B{next(_ids):014X}",
            sender=sender,
            recipient=LINE,
            ref=ref,
            number=n,
            total=len(words),
            body=word,
            raw={"text": word, "concat-part": str(n)},
        )
        for n, word in enumerate(words, start=1)
    ]


def store(service: Service, part: Part) -> list[str]:
    return [sms.body for sms in multipart.store_part(service.engine, part, service.clock.now())]


def messages(service: Service) -> list[str]:
    with service.engine.connect() as conn:
        return list(conn.execute(select(models.messages.c.body)).scalars())


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 2, 0)])
def test_whole_only_when_every_part_is_there(service: Service, order: tuple[int, int, int]) -> None:
    text = parts()
    first, second, last = (text[i] for i in order)
    assert store(service, first) == []
    assert store(service, second) == []
    assert store(service, last) == ["".join(WORDS)]


def test_one_message_one_reply(service: Service) -> None:
    for part in parts():
        assert multipart.receive_part(service, part) in (0, 1)
    assert messages(service) == ["".join(WORDS)]
    assert len(replies(service)) == 1


def test_re_sent_parts_change_nothing(service: Service) -> None:
    text = parts()
    for part in [*text, *text, text[0], text[2]]:
        multipart.receive_part(service, part)
    assert messages(service) == ["".join(WORDS)]
    assert count(service, models.inbound_parts) == 3
    assert len(replies(service)) == 1


def test_a_re_sent_part_before_completion_is_a_no_op(service: Service) -> None:
    text = parts()
    assert store(service, text[0]) == []
    assert store(service, text[0]) == []
    assert count(service, models.inbound_parts) == 1


def test_crash_between_sealing_and_receiving_is_recovered(service: Service) -> None:
    """The caller died after the parts were sealed: the provider's retry delivers the text."""
    text = parts()
    for part in text:
        multipart.store_part(service.engine, part, service.clock.now())  # never received
    assert messages(service) == []
    multipart.receive_part(service, text[2])  # the provider re-sends the unanswered part
    multipart.receive_part(service, text[1])
    assert messages(service) == ["".join(WORDS)]


def test_the_id_depends_on_the_parts_not_the_order(service: Service) -> None:
    text = parts()
    ids = [p.part_id for p in text]
    key = text[0].group_key
    assert multipart.assembled_id("sandbox", key, ids) == multipart.assembled_id(
        "sandbox", key, list(reversed(ids))
    )
    assert len(multipart.assembled_id("sandbox", key, ids)) <= 64


def test_same_ref_from_two_senders_are_two_texts(service: Service) -> None:
    mine, theirs = parts(), parts(sender="+33687654321", words=["a", "b", "c"])
    for part in [*mine[:2], *theirs, mine[2]]:
        multipart.receive_part(service, part)
    assert sorted(messages(service)) == sorted(["".join(WORDS), "abc"])


def test_a_reused_ref_starts_a_new_text(service: Service) -> None:
    """References wrap after 256 texts: a part number seen twice in an open group means the
    old text lost a part; it is sealed as it is and the new one starts afresh."""
    old, new = parts(), parts(words=["x", "y", "z"])
    multipart.receive_part(service, old[0])
    multipart.receive_part(service, old[1])
    for part in new:
        multipart.receive_part(service, part)
    assert sorted(messages(service)) == sorted([WORDS[0] + WORDS[1] + MISSING, "xyz"])


def test_complete_texts_reuse_the_ref_freely(service: Service) -> None:
    for words in (WORDS, ["x", "y", "z"]):
        for part in parts(words=words):
            multipart.receive_part(service, part)
    assert sorted(messages(service)) == sorted(["".join(WORDS), "xyz"])


def test_lost_parts_are_taken_as_they_are_after_a_while(
    service: Service, clock: VirtualClock
) -> None:
    text = parts()
    multipart.receive_part(service, text[0])
    multipart.receive_part(service, text[2])
    assert multipart.receive_stale_parts(service, timedelta(hours=1)) == 0
    clock.advance(timedelta(minutes=61))
    assert multipart.receive_stale_parts(service, timedelta(hours=1)) == 1
    assert messages(service) == [WORDS[0] + MISSING + WORDS[2]]
    with service.engine.connect() as conn:
        raw = conn.execute(select(models.messages.c.raw)).scalar_one()
    assert '"concat-missing": "2"' in raw
    multipart.receive_part(service, text[1])  # a late part: a text of its own, never a crash
    assert multipart.receive_stale_parts(service, timedelta(hours=1)) == 0


def test_the_joined_message_keeps_every_part_as_evidence(service: Service) -> None:
    (sms,) = [
        m
        for part in parts()
        for m in multipart.store_part(service.engine, part, service.clock.now())
    ]
    assert sms.signature_checked
    assert sms.raw["concat-total"] == "3"
    assert '"concat-part": "1"' in sms.raw["parts"]
    assert receive(service, sms).decision is not None


def test_last_parts_arriving_together_complete_once(service: Service) -> None:
    """Two writers storing the last two parts at once: exactly one of them seals the text."""
    text = parts(words=[f"{n} " for n in range(8)])
    for part in text[:6]:
        multipart.receive_part(service, part)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def linger(conn: Any) -> None:
        time.sleep(0.3)  # hold each writer between its count and its commit

    event.listen(service.engine, "commit", linger)

    def deliver(part: Part) -> None:
        barrier.wait()
        try:
            multipart.receive_part(service, part)
        except BaseException as exc:  # reported below, from the main thread
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(part,)) for part in text[6:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    event.remove(service.engine, "commit", linger)
    assert errors == []
    assert messages(service) == ["".join(f"{n} " for n in range(8))]
