"""`antirelou simulate`: scenarios for `antirelou replay`, built from public facts.

Each scenario is a stream of texts (what the service sees) and, apart, who is who (what it
must never see): genuine men, curious testers and supporters, raiders, and senders that must
never be answered. The figures come from the 2017 press coverage (../shared/seed): launch on
Friday 27 October 2017 at 16:00, about 3,000 testers in 48 hours, a raid from Monday 16:00 of
20,000+ insulting texts in four hours from a forum, some phones sending "a thousand at a
time". Everything else (who texts when, what they write) is drawn from a seeded generator,
so a scenario is the same bytes for the same seed.

The generators do not look at the defence's thresholds: other people's scenarios will be
replayed against it, and so should these.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers

PARIS = ZoneInfo("Europe/Paris")

GENUINE, TESTER, RAIDER, NEVER = "genuine", "tester", "raider", "never_answer"

# Men who were given the number: the texts vary, as people do.
OPENERS = (
    "Salut",
    "Coucou",
    "Hello",
    "Bonsoir",
    "Hey",
    "Slt",
    "Yo",
    "Re",
    "Bonjour",
    "Cc",
)
INTROS = (
    "c'est {name} du bar",
    "c'est {name}, on s'est parlé au concert",
    "c'est moi, {name}",
    "{name} de la soirée chez Julie",
    "c'est {name}, le mec de la terrasse",
    "on s'est croisés au {place}",
    "c'est {name} du {place}",
    "tu te souviens de moi ? {name}",
)
FOLLOWS = (
    "tu rentres bien ?",
    "on se revoit quand ?",
    "t'es dispo demain ?",
    "j'ai passé une bonne soirée",
    "tu m'avais dit de t'écrire",
    "ça te dit un verre samedi ?",
    "je voulais pas te déranger",
    "bonne nuit",
    "t'es partie vite",
    "on remet ça ?",
    "tu fais quoi ce week-end ?",
    "j'ai ton écharpe",
    "mes potes te passent le bonjour",
    "t'as bien aimé le groupe ?",
    "je connais un super resto",
    "ton amie est bien rentrée ?",
    "on finit la discussion ?",
    "j'espère que c'est le bon numéro",
    "je suis nul pour les messages",
    "",
)
NAMES = (
    "Marc",
    "Karim",
    "Julien",
    "Thomas",
    "Nico",
    "Yann",
    "Mehdi",
    "Pierre",
    "Hugo",
    "Lucas",
    "Antoine",
    "Sofiane",
    "Maxime",
    "Romain",
    "Kevin",
    "Alex",
    "Bastien",
    "Théo",
    "Sam",
    "Paul",
)
PLACES = ("Baron", "Comptoir", "Perchoir", "bar d'en face", "resto", "club", "festival", "métro")

# Curious supporters and journalists: short, often the same few words (a real "copy-paste").
TESTS = (
    "Test",
    "test",
    "Coucou, je teste !",
    "C'est pour tester",
    "Ça marche ?",
    "Test 1 2 3",
    "Bravo pour l'initiative",
    "Je teste le numéro anti-relou",
    "Hello, test",
    "Super idée !",
    "Journaliste à {media}, je teste le service",
    "Trop bien ce numéro",
    "😂 test",
)
MEDIA = ("France Info", "Libé", "20 Minutes", "Le Monde", "RTL", "Konbini", "BFM")

# What the forum sent: insults, the raid's stated aim, spam copied from a thread.
RAID_TEXTS = (
    "Salope",
    "Féministe de merde",
    "Ferme ta gueule",
    "On va vider ta cagnotte",
    "Augmentons la dette des féministes",
    "Ayaa le 18-25 est là",
    "RISITAS",
    "Raid en cours",
    "Bande de connasses",
    "Va te faire foutre",
    "Je te paye combien le SMS ?",
    "T'es moche de toute façon",
    "On sait où t'habites",
    "Bonjour, je suis un relou",
    "Coucou 😘",
    "Salut ça va ?",
    "Réponds stp",
    "Le forum te passe le bonjour",
)
# A slow drip: one insult now and then, never fast.
DRIP_TEXTS = (
    "Pauvre conne",
    "Sale féministe",
    "Tu mérites rien",
    "Grosse pute",
    "Ta gueule",
    "Je vais te retrouver",
    "Crève",
    "Connasse",
)


@dataclass(frozen=True)
class Text:
    at: datetime
    sender: str
    body: str


@dataclass
class Scenario:
    texts: list[Text] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)
    raids: list[tuple[datetime, datetime]] = field(default_factory=list)

    def add(self, role: str, sender: str, at: datetime, body: str) -> None:
        self.roles.setdefault(sender, role)
        self.texts.append(Text(at, sender, body))


class Numbers:
    """Distinct numbers of each shape, never twice in one scenario."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def mobile(self) -> str:
        """A valid French mobile (+336 / +337), as genuine senders have."""
        while True:
            number = f"+33{self.rng.choice('67')}{self.rng.randrange(10**8):08d}"
            if number not in self.used and _valid(number):
                self.used.add(number)
                return number

    def block(self, size: int) -> list[str]:
        """`size` consecutive numbers: a batch of virtual SIMs or app numbers."""
        while True:
            start = 700_000_000 + self.rng.randrange(90_000_000)
            numbers = [f"+33{start + i}" for i in range(size)]
            if not self.used.intersection(numbers) and all(map(_valid, numbers)):
                self.used.update(numbers)
                return numbers

    def foreign(self) -> str:
        """A valid mobile outside France (Belgium, Switzerland, UK, Canada)."""
        while True:
            number = self.rng.choice(
                (
                    f"+324{self.rng.randrange(70, 100)}{self.rng.randrange(10**6):06d}",
                    f"+417{self.rng.choice('6789')}{self.rng.randrange(10**7):07d}",
                    f"+447{self.rng.randrange(400, 1000)}{self.rng.randrange(10**6):06d}",
                    f"+1514{self.rng.randrange(200, 1000)}{self.rng.randrange(10**4):04d}",
                )
            )
            if number not in self.used and _valid(number):
                self.used.add(number)
                return number


def _valid(number: str) -> bool:
    return phonenumbers.is_valid_number(phonenumbers.parse(number))


def _at(start: datetime, seconds: float) -> datetime:
    return start + timedelta(seconds=seconds)


def _genuine_text(rng: random.Random) -> str:
    """People do not type alike: openers, intros, a question or two, case, punctuation."""
    intro = rng.choice(INTROS).format(name=rng.choice(NAMES), place=rng.choice(PLACES))
    parts = [f"{rng.choice(OPENERS)} {intro}"]
    parts += rng.sample([f for f in FOLLOWS if f], rng.choice((0, 1, 1, 2)))
    text = rng.choice((", ", " ! ", ". ", " ")).join(parts)
    if rng.random() < 0.3:
        text = text.lower()
    return text + rng.choice(("", "", " ?", " :)", " 😊", "...", " !"))


def _night_time(rng: random.Random, day: datetime) -> datetime:
    """A moment of a night out: mostly 21:00 to 03:00 local time."""
    hour = rng.choice((19, 20, 21, 21, 22, 22, 23, 23, 23, 0, 0, 1, 1, 2, 3, 12, 17, 18))
    base = day.replace(hour=0, minute=0, second=0, microsecond=0)
    base += timedelta(days=1) if hour < 12 else timedelta(0)
    return base.replace(hour=hour) + timedelta(seconds=rng.uniform(0, 3600))


def add_genuine(
    s: Scenario, rng: random.Random, nums: Numbers, start: datetime, days: int, per_day: int
) -> None:
    """Men who were given the number, at night-life hours; some text twice or three times."""
    for day in range(days):
        for _ in range(per_day):
            sender, at = nums.mobile(), _night_time(rng, start + timedelta(days=day))
            for n in range(rng.choice((1, 1, 1, 1, 2, 2, 3))):
                body = _genuine_text(rng) if n == 0 else rng.choice(FOLLOWS[:-1])
                s.add(GENUINE, sender, at + timedelta(minutes=7 * n), body)


def add_testers(
    s: Scenario, rng: random.Random, nums: Numbers, start: datetime, count: int, hours: float
) -> None:
    """Supporters trying the number after it was in the news: front-loaded, decaying."""
    for _ in range(count):
        offset = min(rng.expovariate(3 / (hours * 3600)), hours * 3600)
        body = rng.choice(TESTS).format(media=rng.choice(MEDIA))
        s.add(TESTER, nums.mobile(), _at(start, offset), body)


def add_raid(
    s: Scenario,
    rng: random.Random,
    nums: Numbers,
    start: datetime,
    raiders: int,
    texts: int,
    hours: float,
) -> None:
    """A forum raid: heavy-tailed texts per phone (a few send hundreds), ramping up as the
    thread spreads; some raiders on blocks of virtual numbers, some foreign."""
    weights = [rng.paretovariate(1.1) for _ in range(raiders)]
    scale = texts / sum(weights)
    senders = [nums.mobile() for _ in range(raiders * 6 // 10)]
    senders += nums.block(raiders // 5)
    senders += [nums.mobile() for _ in range(raiders - len(senders))]
    span = hours * 3600
    for sender, weight in zip(senders, weights, strict=True):
        count = max(1, round(weight * scale))
        joined = span * rng.random() ** 2  # most join early, as the thread is fresh
        burst = rng.random() < 0.05  # a phone "sending a thousand at a time"
        favourite = rng.choice(RAID_TEXTS)
        for n in range(count):
            joined += rng.uniform(0.2, 2) if burst else rng.expovariate(1 / 40)
            if joined > span:  # the number was switched off at the end of the raid
                break
            body = favourite if rng.random() < 0.6 else rng.choice(RAID_TEXTS)
            s.add(RAIDER, sender, _at(start, joined), f"{body} {n}" if burst else body)
    s.raids.append((start, _at(start, span)))


def add_never_answer(
    s: Scenario, rng: random.Random, nums: Numbers, start: datetime, count: int, hours: float
) -> None:
    """Senders no reply may ever reach: foreign, premium rate, short codes, names."""
    for i in range(count):
        kind = i % 4
        if kind == 0:
            sender = nums.foreign()
        elif kind == 1:
            sender = f"+3389{rng.choice('1279')}{rng.randrange(10**6):06d}"  # 089x premium
        elif kind == 2:
            sender = str(rng.choice((36179, 38200, 33700, 84100)))  # short codes
        else:
            sender = rng.choice(("INFO", "BANQUE", "Colissimo", "AMELI", "PROMO"))
        body = _genuine_text(rng) if kind == 0 else "Votre code : " + str(rng.randrange(10**6))
        s.add(NEVER, sender, _at(start, rng.uniform(0, hours * 3600)), body)


def raid2017(rng: random.Random) -> Scenario:
    """Launch Friday 27 Oct 2017 16:00, ~3,000 testers in 48 h, genuine men every night,
    then Monday 30 Oct 16:00 a raid of ~20,000 texts from ~600 phones in four hours."""
    s, nums = Scenario(), Numbers(rng)
    launch = datetime(2017, 10, 27, 16, 0, tzinfo=PARIS)
    add_testers(s, rng, nums, launch, 3000, 48)
    add_genuine(s, rng, nums, launch, days=4, per_day=40)
    add_raid(s, rng, nums, datetime(2017, 10, 30, 16, 0, tzinfo=PARIS), 600, 20000, 4)
    add_never_answer(s, rng, nums, launch, 40, 96)
    return s


def swarm(rng: random.Random) -> Scenario:
    """Thousands of fresh numbers, one harmless-looking text each, within half an hour."""
    s, nums = Scenario(), Numbers(rng)
    start = datetime(2024, 3, 8, 20, 0, tzinfo=PARIS)
    add_genuine(s, rng, nums, start - timedelta(days=1), days=2, per_day=30)
    raid_start = start + timedelta(hours=2)
    for _ in range(4000):
        at = _at(raid_start, rng.uniform(0, 1800))
        s.add(RAIDER, nums.mobile(), at, rng.choice(RAID_TEXTS[13:]))
    s.raids.append((raid_start, raid_start + timedelta(minutes=30)))
    return s


def media_surge(rng: random.Random) -> Scenario:
    """A TV mention at 20:40: thousands of supporters test the number, no raider at all."""
    s, nums = Scenario(), Numbers(rng)
    start = datetime(2024, 11, 25, 20, 40, tzinfo=PARIS)
    add_genuine(s, rng, nums, start - timedelta(days=1), days=3, per_day=30)
    add_testers(s, rng, nums, start, 4000, 6)
    return s


def slow_drip(rng: random.Random) -> Scenario:
    """Insulting numbers, one text every few hours each, over a week: no rate spikes."""
    s, nums = Scenario(), Numbers(rng)
    start = datetime(2024, 5, 1, 0, 0, tzinfo=PARIS)
    add_genuine(s, rng, nums, start, days=7, per_day=25)
    for _ in range(60):
        sender, at = nums.mobile(), _at(start, rng.uniform(0, 6 * 86400))
        for _ in range(rng.randint(1, 4)):
            s.add(RAIDER, sender, at, rng.choice(DRIP_TEXTS))
            at += timedelta(hours=rng.uniform(3, 30))
    return s


def never_answer(rng: random.Random) -> Scenario:
    """Ordinary nights, and senders a reply must never reach mixed in."""
    s, nums = Scenario(), Numbers(rng)
    start = datetime(2024, 6, 14, 0, 0, tzinfo=PARIS)
    add_genuine(s, rng, nums, start, days=2, per_day=40)
    add_never_answer(s, rng, nums, start, 400, 48)
    return s


SCENARIOS: dict[str, Callable[[random.Random], Scenario]] = {
    "raid2017": raid2017,
    "swarm": swarm,
    "media_surge": media_surge,
    "slow_drip": slow_drip,
    "never_answer": never_answer,
}


def build(name: str, seed: int) -> Scenario:
    # Seeded on purpose: the same seed must give the same bytes (not for secrets).
    scenario = SCENARIOS[name](random.Random(f"{name}:{seed}"))  # noqa: S311
    scenario.texts.sort(key=lambda text: (text.at, text.sender))
    return scenario


def write_scenario(name: str, seed: int, out_dir: Path, line: str) -> tuple[Path, Path]:
    """Write OUT/NAME.jsonl (for `antirelou replay`) and OUT/NAME.truth.json (who is who)."""
    scenario = build(name, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    texts, truth = out_dir / f"{name}.jsonl", out_dir / f"{name}.truth.json"
    width = int(math.log10(max(1, len(scenario.texts)))) + 1
    with texts.open("w", encoding="utf-8") as out:
        for n, text in enumerate(scenario.texts):
            row = {
                "id": f"SIM{seed}-{n:0{width}d}",
                "at": text.at.isoformat(timespec="milliseconds"),
                "from": text.sender,
                "to": line,
                "body": text.body,
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    facts = {
        "scenario": name,
        "seed": seed,
        "raids": [{"start": a.isoformat(), "end": b.isoformat()} for a, b in scenario.raids],
        "roles": dict(sorted(scenario.roles.items())),
    }
    truth.write_text(json.dumps(facts, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return texts, truth
