"""Attacks other than the 2017 raid: a swarm of fresh numbers, and a slow drip of insults.

swarm: thousands of numbers that never texted before, each sending one harmless-looking text
within minutes, so that no per-sender rule (velocity, insults) can see them. Bulk senders use
numbers that are cheap in bulk: virtual 09 numbers rented in runs, prepaid or spoofed mobile
numbers spread over the whole range, and foreign numbers from online SMS services.

slow_drip: a harassment campaign kept under any rate threshold: a hundred-odd people, each
sending one to four insults of his own (not pasted), hours or days apart, for a week.
"""

from __future__ import annotations

from datetime import timedelta

from antirelou.scenarios.base import (
    DAYTIME,
    NIGHT_LIFE,
    RAIDER,
    Builder,
    hour_weight,
    paris,
)


def swarm(b: Builder) -> None:
    start, end = paris(2018, 11, 13, 18), paris(2018, 11, 15, 6)
    attack = paris(2018, 11, 14, 21)
    b.facts.append("One harmless-looking text from each of thousands of fresh numbers.")
    b.genuine_men(start, end, b.n(90))
    b.testers(start, end, b.n(40), hour_weight(DAYTIME))
    count = b.n(3000)
    senders: list[str] = []
    voip = round(count * 0.4)
    while len(senders) < voip:
        senders += b.numbers.fr_voip_run(b.rng.randint(10, 60))
    senders = senders[:voip]
    foreign = round(count * 0.2)
    senders += [b.numbers.foreign_mobile() for _ in range(foreign)]
    while len(senders) < count:
        senders.append(b.numbers.fr_mobile())
    b.rng.shuffle(senders)
    duration = timedelta(minutes=20)

    def ramp(when: object) -> float:
        return 1.0

    moments = b.times(attack, attack + duration, count, ramp, step=timedelta(seconds=10))
    moments[0] = attack
    for sender, at in zip(senders, moments, strict=True):
        b.role(sender, RAIDER, None if sender.startswith("+33") else "foreign")
        b.add(sender, at, b.say.disguised())
    b.attack("swarm", senders)


def slow_drip(b: Builder) -> None:
    start, end = paris(2018, 5, 14, 0), paris(2018, 5, 21, 0)
    b.facts.append("Insults of their own from ordinary mobiles, hours or days apart.")
    b.genuine_men(start, end, b.n(280))
    b.testers(start, end, b.n(70), hour_weight(DAYTIME))
    senders: list[str] = []
    evenings = hour_weight(NIGHT_LIFE)
    for at in b.times(start, end, b.n(120), evenings):
        sender = b.numbers.fr_mobile()
        senders.append(sender)
        b.role(sender, RAIDER)
        b.add(sender, at, b.say.drip_insult())
        for _ in range(b.rng.choices((0, 1, 2, 3), weights=(40, 30, 20, 10))[0]):
            at += timedelta(hours=b.rng.expovariate(1 / 10))
            if at < end:
                b.add(sender, at, b.say.drip_insult())
    b.attack("drip", senders)
