"""Traffic without an attack: a TV mention, and senders that must never be answered.

media_surge: a TV show mentions the number at prime time (as happened to the 2014 Feminist
Phone Intervention, 100,000 contacts in its first week, and to the 2017 number, 3,000 testers
in 48 hours): thousands of supporters text it within the hour, a smaller wave after the replay
the next day. Ordinary people on their own mobiles, writing their own words. No raider.

never_answer: what reaches any number besides people: foreign numbers outside the line's
allowed countries, premium-rate and shared-cost numbers (answering would bill us), short codes
and alphanumeric senders (delivery notices, codes, adverts), mixed with genuine senders.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from antirelou.scenarios.base import (
    DAYTIME,
    NEVER,
    Builder,
    burst,
    hour_weight,
    paris,
)


def media_surge(b: Builder) -> None:
    start, end = paris(2019, 3, 8, 12), paris(2019, 3, 10, 6)
    mention = paris(2019, 3, 8, 20, 50)
    replay = paris(2019, 3, 9, 12, 30)
    show = b.say.pick(("Quotidien", "C à vous", "le 20h", "Envoyé spécial"))
    b.facts.append(f"A prime-time TV mention ({show}), then a replay the next day.")
    b.phases.update({"tv_mention": mention.isoformat(), "replay": replay.isoformat()})
    b.genuine_men(start, end, b.n(100))
    daytime = hour_weight(DAYTIME)
    after_show = burst(mention, timedelta(minutes=25), timedelta(minutes=2))
    after_replay = burst(replay, timedelta(minutes=40), timedelta(minutes=5))

    def weight(when: datetime) -> float:
        return after_show(when) + 0.15 * after_replay(when)

    b.testers(start, end, b.n(60), daytime)  # the usual trickle of the curious
    b.testers(mention, end, b.n(3500), weight, first=lambda: b.say.supporter_first(show))


def never_answer(b: Builder) -> None:
    start, end = paris(2018, 6, 1, 18), paris(2018, 6, 3, 6)
    b.facts.append("Foreign, premium-rate, short-code and alphanumeric senders beside people.")
    b.genuine_men(start, end, b.n(120))
    daytime = hour_weight(DAYTIME)
    b.testers(start, end, b.n(40), daytime, foreign_share=0.0)
    kinds = (
        ("foreign", b.n(80), b.numbers.foreign_mobile),
        ("premium_rate", b.n(15), b.numbers.premium_rate),
        ("short_code", b.n(25), b.numbers.short_code),
        ("alphanumeric", b.n(30), b.numbers.alphanumeric),
    )
    for reason, count, draw in kinds:
        for at in b.times(start, end, count, daytime):
            sender = draw()
            b.role(sender, NEVER, reason)
            for _ in range(b.rng.choices((1, 2, 3), weights=(60, 30, 10))[0]):
                body = b.say.foreign_text() if reason == "foreign" else b.say.service_text(sender)
                b.add(sender, at, body)
                at += timedelta(minutes=b.rng.expovariate(1 / 30))
                if at >= end:
                    break
