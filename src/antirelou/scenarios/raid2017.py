"""The 2017 raid, rebuilt from the press coverage of the time.

- Launched Friday 27 October 2017 at 16:00; about 3,000 people tested it in the first 48 hours
  (supporters, journalists), with waves as articles and shares came out.
- Men who had been given the number texted it, mostly in the evening and at night.
- Monday 30 October from 16:00 a forum raided it: 20,000+ texts until the number was switched
  off at 20:00, "16,000 malicious messages" that evening, some phones sending them "a thousand
  at a time", with the stated aim to "augmenter la dette des féministes" and "vider la
  cagnotte". Here: ~600 raiders, heavy-tailed (most send a few texts, a few scripts send
  hundreds), mostly their own French mobiles, some virtual (09) numbers rented in runs, some
  foreign numbers from online SMS services; copy-pasted texts, insults, forum slang, and
  harmless-looking texts (every text got a paid reply, whatever it said).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from antirelou.scenarios.base import (
    DAYTIME,
    RAIDER,
    Builder,
    burst,
    hour_weight,
    paris,
)

LAUNCH = paris(2017, 10, 27, 16)
RAID_START = paris(2017, 10, 30, 16)
RAID_HOURS = 4
END = paris(2017, 10, 31, 4)

FACTS = [
    "Launched Friday 27 Oct 2017 16:00; about 3,000 testers in the first 48 hours.",
    "Raid Monday 30 Oct from 16:00 to 20:00 (number switched off): 20,000+ texts.",
    "'16,000 malicious messages filtered' that evening; some phones sent 'a thousand at a time'.",
    "Raid aim quoted by the press: 'augmenter la dette des féministes', 'vider la cagnotte'.",
    "Each reply cost about EUR 0.16 (two segments at EUR 0.07627, EUR 0.0075 to receive).",
]


def build(b: Builder) -> None:
    b.facts.extend(FACTS)
    b.phases.update(
        {
            "launch": LAUNCH.isoformat(),
            "launch_surge_end": (LAUNCH + timedelta(hours=48)).isoformat(),
        }
    )
    _launch_surge(b)
    b.genuine_men(LAUNCH, END, b.n(220))
    raiders = _raid(b)
    b.attack("raid", raiders)


def _launch_surge(b: Builder) -> None:
    waves = [
        burst(LAUNCH, timedelta(hours=3), timedelta(minutes=20)),
        burst(paris(2017, 10, 27, 19), timedelta(hours=4)),  # first articles, shares
        burst(paris(2017, 10, 28, 10), timedelta(hours=5)),  # weekend press
        burst(paris(2017, 10, 28, 20), timedelta(hours=4)),
        burst(paris(2017, 10, 29, 11), timedelta(hours=5)),
    ]
    amplitude = (1.0, 0.8, 0.6, 0.4, 0.3)
    daytime = hour_weight(DAYTIME)

    def weight(when: datetime) -> float:
        interest = sum(a * w(when) for a, w in zip(amplitude, waves, strict=True))
        return daytime(when) * (interest + 0.02)

    b.testers(LAUNCH, LAUNCH + timedelta(hours=48), b.n(3000), weight)
    # The curious keep trickling in afterwards, fewer and fewer.
    b.testers(LAUNCH + timedelta(hours=48), END, b.n(250), daytime)


def _raid(b: Builder) -> list[str]:
    count, total = b.n(600), b.n(20000)
    senders = _raider_numbers(b, count)
    sizes = _heavy_tail(b, count, total)
    end = RAID_START + timedelta(hours=RAID_HOURS)
    for index, (sender, size) in enumerate(zip(senders, sizes, strict=True)):
        b.role(sender, RAIDER, None if sender.startswith("+33") else "foreign")
        join = RAID_START if index == 0 else _join_time(b)
        moments = _sending_times(b, join, size, end)
        for at, body in zip(moments, _raid_bodies(b, size), strict=True):
            b.add(sender, at, body)
    return senders


def _raider_numbers(b: Builder, count: int) -> list[str]:
    senders: list[str] = []
    voip = round(count * 0.12)
    while len(senders) < voip:
        senders += b.numbers.fr_voip_run(b.rng.randint(4, 25))
    senders = senders[:voip]
    senders += [b.numbers.foreign_mobile() for _ in range(round(count * 0.08))]
    while len(senders) < count:
        senders.append(b.numbers.fr_mobile())
    b.rng.shuffle(senders)
    return senders


def _heavy_tail(b: Builder, count: int, total: int) -> list[int]:
    """Texts per raider: lognormal, scaled to `total`; most send a few, a few send hundreds."""
    raw = [b.rng.lognormvariate(0.0, 1.7) for _ in range(count)]
    factor = (total - count) / sum(raw)
    sizes = [1 + int(r * factor) for r in raw]
    cap = max(50, total // 12)
    sizes = [min(cap, s) for s in sizes]
    short = total - sum(sizes)
    order = sorted(range(count), key=lambda i: -raw[i])
    i = 0
    while short > 0:  # hand the rounding leftovers to the busiest senders
        j = order[i % max(1, count // 10)]
        if sizes[j] < cap:
            sizes[j] += 1
            short -= 1
        i += 1
        if i > 100 * count:
            break
    return sizes


def _join_time(b: Builder) -> datetime:
    """When a raider joins: most in the first half hour after the thread, then stragglers."""
    mean = 12 if b.rng.random() < 0.45 else 80  # minutes
    offset = b.rng.expovariate(1 / mean)
    offset = min(offset, RAID_HOURS * 60 - 5)
    return RAID_START + timedelta(minutes=offset, seconds=b.rng.random())


def _sending_times(b: Builder, join: datetime, size: int, end: datetime) -> list[datetime]:
    """Scripts send every few seconds; people typing, every minute or two."""
    if size >= 40:
        median, sigma = 3.0, 0.6
    elif size >= 10:
        median, sigma = 25.0, 0.9
    else:
        median, sigma = 100.0, 1.0
    moments, at = [join], join
    for _ in range(size - 1):
        at += timedelta(seconds=median * b.rng.lognormvariate(0.0, sigma))
        moments.append(at)
    if moments[-1] >= end:  # squeeze into the raid's four hours
        span = (end - timedelta(seconds=1) - join) / (moments[-1] - join)
        moments = [join + (m - join) * span for m in moments]
    return moments


def _raid_bodies(b: Builder, size: int) -> list[str]:
    say = b.say
    style = b.rng.choices(("paste", "insult", "slang", "disguised"), weights=(35, 25, 10, 30))[0]
    paste = say.pick(say.PASTES)
    bodies: list[str] = []
    for i in range(size):
        roll = b.rng.random()
        if style == "paste":
            body = say.raid_paste(paste) if roll < 0.8 else say.insult()
        elif style == "insult":
            body = say.threat() if roll < 0.08 else say.insult()
        elif style == "slang":
            body = say.slang() if roll < 0.7 else say.raid_paste(say.pick(say.PASTES))
        else:
            body = say.disguised() if i == 0 or roll < 0.5 else say.insult()
        bodies.append(body)
    if size >= 40:  # a script: "a thousand at a time"
        base = bodies[0]
        bodies = [bodies[0]] + [say.flood(i, base) for i in range(1, size)]
    return bodies
