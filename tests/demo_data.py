"""A believable day on a line, then a raid: for screenshots and the browser tests."""

from __future__ import annotations

import random
from datetime import timedelta

from antirelou.clock import VirtualClock
from antirelou.inbound import receive
from antirelou.providers.sandbox import SandboxSender
from antirelou.service import Service
from antirelou.worker import Worker
from tests.helpers import sms

OPENERS = ["Salut", "Coucou", "Bonsoir", "Hello", "Hey", "Re-bonsoir", "Yo"]
NAMES = [
    "Marc",
    "Julien",
    "Karim",
    "Tom",
    "Paul",
    "Max",
    "Hugo",
    "Yanis",
    "Léo",
    "Bastien",
    "Nico",
    "Rémi",
    "Sofiane",
    "Arthur",
    "Quentin",
    "Mehdi",
    "Lucas",
    "Antoine",
]
PLACES = [
    "du bar",
    "du concert",
    "du métro",
    "de la soirée chez Léa",
    "de la fac",
    "du festival",
    "de la salle de sport",
    "du bus 38",
    "de la terrasse",
    "du club",
]
ENDINGS = [
    "tu rentres bien ?",
    "on se voit demain ?",
    "ça te dit un verre ?",
    ":)",
    "tu m'avais dit de t'écrire",
    "j'ai kiffé te parler",
    "réponds quand tu peux",
    "c'était cool ce soir",
    "t'es libre samedi ?",
]
FOLLOW_UPS = ["Tu réponds pas ?", "Sérieux ?", "Ok...", "C'est quoi ce message ?", "??"]
INSULTS = [
    "sale pute de féministe",
    "salope va",
    "connasse on va vider ta cagnotte",
    "ferme ta gueule salope",
    "grosse pute",
]


def greeting(rng: random.Random) -> str:
    """A first text that reads like a person's, all different (no copy-paste cluster)."""
    parts = (rng.choice(OPENERS), rng.choice(NAMES), rng.choice(PLACES), rng.choice(ENDINGS))
    return "{}, c'est {} {}, {}".format(*parts)


def mobile(rng: random.Random) -> str:
    return f"+336{rng.randint(10_000_000, 99_999_999)}"


def ordinary_day(service: Service, clock: VirtualClock, senders: int, seed: int = 7) -> None:
    """Senders spread over the clock's time, a third of them texting again."""
    rng = random.Random(seed)
    worker = Worker(service, {"sandbox": SandboxSender()}, deliver_alerts=False)
    for _ in range(senders):
        clock.advance(timedelta(seconds=rng.randint(20, 120)))
        number = mobile(rng)
        receive(service, sms(sender=number, body=greeting(rng)))
        if rng.random() < 0.33:
            clock.advance(timedelta(seconds=rng.randint(5, 60)))
            receive(service, sms(sender=number, body=rng.choice(FOLLOW_UPS)))
        worker.drain()


def raid(service: Service, clock: VirtualClock, texts: int, seed: int = 11) -> None:
    """Insults from many numbers, two seconds apart: opens an incident."""
    rng = random.Random(seed)
    for i in range(texts):
        clock.advance(timedelta(seconds=2))
        receive(service, sms(sender=mobile(rng), body=INSULTS[i % len(INSULTS)]))
