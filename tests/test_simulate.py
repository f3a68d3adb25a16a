"""`antirelou simulate`: deterministic, well-formed scenarios, and the defence against one."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from click.testing import CliRunner

from antirelou.cli import main
from antirelou.phone import SenderKind, classify
from antirelou.replay import read_scenario, run_replay
from antirelou.simulate import (
    GENUINE,
    NEVER,
    RAIDER,
    SCENARIOS,
    TESTER,
    build_scenario,
    write_scenario,
)
from tests.helpers import LINE, make_settings

KINDS = {
    "premium_rate": SenderKind.PREMIUM_RATE,
    "short_code": SenderKind.SHORT_CODE,
    "alphanumeric": SenderKind.ALPHANUMERIC,
}
SMALL = 0.1  # a tenth of every population: the shapes hold, the tests stay fast


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    out = tmp_path_factory.mktemp("scenarios")
    return {name: write_scenario(name, 7, out, LINE, SMALL) for name in SCENARIOS}


@pytest.fixture(scope="module")
def raid2017(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The full-size 2017 raid, written once (about a second)."""
    texts, truth = write_scenario("raid2017", 1, tmp_path_factory.mktemp("raid"), LINE)
    return texts, json.loads(truth.read_text(encoding="utf-8"))


def texts_of(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as handle:
        return list(read_scenario(handle))


def truth_of(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def test_the_cli_knows_every_scenario() -> None:
    assert set(SCENARIOS) == {"raid2017", "swarm", "media_surge", "slow_drip", "never_answer"}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_same_seed_same_bytes_other_seed_other_texts(name: str, tmp_path: Path) -> None:
    first = write_scenario(name, 7, tmp_path / "a", LINE, SMALL)
    again = write_scenario(name, 7, tmp_path / "b", LINE, SMALL)
    other = write_scenario(name, 8, tmp_path / "c", LINE, SMALL)
    assert first[0].name == f"{name}.jsonl"
    assert first[1].name == f"{name}.truth.json"
    for path, same in zip(first, again, strict=True):
        assert path.read_bytes() == same.read_bytes()
    assert first[0].read_bytes() != other[0].read_bytes()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_replayable_in_time_order_and_truth_covers_every_sender(
    name: str, written: dict[str, tuple[Path, Path]]
) -> None:
    texts_path, truth_path = written[name]
    texts = texts_of(texts_path)
    truth = truth_of(truth_path)
    assert texts
    assert all(a.at <= b.at for a, b in itertools.pairwise(texts))
    assert all(t.at.utcoffset() is not None for t in texts)
    assert len({t.id for t in texts}) == len(texts)
    assert all(t.id.startswith("SM") for t in texts)
    assert {t.to for t in texts} == {LINE}
    assert {t.sender for t in texts} == set(truth["senders"])
    assert set(truth["senders"].values()) <= {GENUINE, TESTER, RAIDER, NEVER}
    assert set(truth["never_answer"]) <= set(truth["senders"])
    assert truth["texts"] == len(texts)
    assert sum(truth["roles"].values()) == len(truth["senders"])
    for attack in truth["attacks"]:
        start, end = datetime.fromisoformat(attack["start"]), datetime.fromisoformat(attack["end"])
        assert texts[0].at <= start <= end <= texts[-1].at


def test_raid2017_has_the_shape_of_the_press_accounts(
    raid2017: tuple[Path, dict[str, Any]],
) -> None:
    texts_path, truth = raid2017
    texts = texts_of(texts_path)
    roles = truth["senders"]
    launch = datetime.fromisoformat("2017-10-27T16:00:00+02:00")
    start, end = (datetime.fromisoformat(truth["raid"][k]) for k in ("start", "end"))
    assert start == datetime.fromisoformat("2017-10-30T16:00:00+01:00")
    assert timedelta(hours=3, minutes=30) <= end - start <= timedelta(hours=4)
    # About 3,000 testers in the first 48 hours.
    first_at: dict[str, datetime] = {}
    for t in texts:
        first_at.setdefault(t.sender, t.at)
    early = [s for s, at in first_at.items() if at < launch + timedelta(hours=48)]
    testers = [s for s in early if roles[s] == TESTER]
    assert 2_600 <= len(testers) <= 3_300
    # About 20,000 texts from about 600 raiders, all within the raid, heavy-tailed.
    raid_texts = [t for t in texts if roles[t.sender] == RAIDER]
    per_phone = Counter(t.sender for t in raid_texts)
    assert 550 <= len(per_phone) <= 650
    assert 18_000 <= len(raid_texts) <= 22_000
    assert all(start <= t.at <= end for t in raid_texts)
    sizes = sorted(per_phone.values(), reverse=True)
    assert sizes[0] >= 300, "a few phones send hundreds"
    assert sizes[len(sizes) // 2] <= 20, "most raiders send a few"
    assert sum(sizes[:60]) >= 0.5 * len(raid_texts), "a tenth of the phones send most"
    # French mobiles mostly, some virtual 09 numbers and foreign ones.
    kinds = Counter(
        "voip" if s.startswith("+339") else "mobile" if s.startswith("+33") else "foreign"
        for s in per_phone
    )
    assert kinds["mobile"] > 0.6 * len(per_phone)
    assert kinds["voip"] > 0
    assert kinds["foreign"] > 0
    # Genuine men text at night-life hours.
    hours = Counter(t.at.hour for t in texts if roles[t.sender] == GENUINE)
    night = sum(n for hour, n in hours.items() if hour >= 19 or hour < 4)
    assert night > 0.6 * sum(hours.values())


def test_raid_texts_mix_pastes_insults_slang_and_harmless_looking(
    raid2017: tuple[Path, dict[str, Any]],
) -> None:
    texts_path, truth = raid2017
    bodies = [t.body for t in texts_of(texts_path) if truth["senders"][t.sender] == RAIDER]
    lowered = [b.lower() for b in bodies]
    assert sum("cagnotte" in b or "16 centimes" in b for b in lowered) > 500
    assert sum("pute" in b or "connasse" in b or "salope" in b for b in lowered) > 500
    assert sum("khey" in b or "issou" in b or "ayaa" in b for b in lowered) > 100
    assert sum("c'est" in b and "bar" in b for b in lowered) > 0  # looks like a genuine man
    assert sum(b.isdigit() for b in bodies) > 500  # scripts sending a counter


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_people_text_from_valid_french_mobiles(
    name: str, written: dict[str, tuple[Path, Path]]
) -> None:
    truth = truth_of(written[name][1])
    people = [s for s, role in truth["senders"].items() if role in (GENUINE, TESTER)]
    assert people
    for sender in people:
        parsed = phonenumbers.parse(sender)
        assert phonenumbers.is_valid_number(parsed), sender
        assert phonenumbers.region_code_for_number(parsed) == "FR"
        number = classify(sender)
        assert number.kind is SenderKind.ANSWERABLE
        assert sender.startswith(("+336", "+337")), sender


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_never_answer_senders_really_cannot_be_answered(
    name: str, written: dict[str, tuple[Path, Path]]
) -> None:
    truth = truth_of(written[name][1])
    for sender, why in truth["never_answer"].items():
        number = classify(sender)
        if why == "foreign":
            assert number.kind is SenderKind.ANSWERABLE, sender  # valid, but abroad
            assert number.country not in (None, "FR"), sender
        else:
            assert number.kind is KINDS[why], sender
    for sender, role in truth["senders"].items():
        if role == NEVER:
            assert sender in truth["never_answer"]


def test_never_answer_has_every_kind(written: dict[str, tuple[Path, Path]]) -> None:
    truth = truth_of(written["never_answer"][1])
    reasons = Counter(truth["never_answer"].values())
    assert set(reasons) == {"foreign", "premium_rate", "short_code", "alphanumeric"}
    premium = [s for s, why in truth["never_answer"].items() if why == "premium_rate"]
    assert all(s.startswith(("+3389", "+3381")) for s in premium)
    assert truth["roles"][GENUINE] > 0


def test_media_surge_has_no_raider_and_swarm_one_text_per_raider() -> None:
    surge = build_scenario("media_surge", 1, LINE, 0.3)
    assert RAIDER not in surge.roles.values()
    assert not surge.attacks
    swarm = build_scenario("swarm", 1, LINE)
    per_raider = Counter(sender for _, _, sender, _ in swarm.texts if swarm.roles[sender] == RAIDER)
    assert len(per_raider) == 3000
    assert set(per_raider.values()) == {1}
    (attack,) = swarm.attacks
    span = datetime.fromisoformat(attack["end"]) - datetime.fromisoformat(attack["start"])
    assert span <= timedelta(minutes=30)


def test_slow_drip_stays_slow() -> None:
    drip = build_scenario("slow_drip", 1, LINE)
    moments = sorted(at for at, _, sender, _ in drip.texts if drip.roles[sender] == RAIDER)
    assert len(moments) >= 150
    busiest = max(
        sum(1 for m in moments[i:] if m - at < timedelta(minutes=10))
        for i, at in enumerate(moments)
    )
    assert busiest <= 4, "never more than a handful of insults in ten minutes"


def test_cli_writes_a_scenario(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["simulate", "never_answer", "--seed", "3", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "never_answer.jsonl").exists()
    assert (tmp_path / "never_answer.truth.json").exists()
    unknown = CliRunner().invoke(main, ["simulate", "nope", "--out", str(tmp_path)])
    assert unknown.exit_code == 2
    assert "known:" in unknown.output


def _replies_by_role(texts: Path, truth: dict[str, Any], out: Path, mode: str) -> Counter[str]:
    settings = make_settings(
        "sqlite:///unused.db",
        defence={"mode": mode},
        budget={"daily_cap": 10_000, "total": 100_000},
        evidence={"key_path": str(out / "evidence.key")},
    )
    run_replay(texts, settings, out, timedelta(hours=2), progress=False)
    sender_of = {t.id: t.sender for t in texts_of(texts)}
    lines = (out / "outbound.jsonl").read_text(encoding="utf-8").splitlines()
    return Counter(truth["senders"][sender_of[json.loads(raw)["in_reply_to"]]] for raw in lines)


def test_the_defence_spends_far_less_on_a_raid_than_once_per_sender(tmp_path: Path) -> None:
    """The first 20 minutes of the 2017 raid at a fifth of its size (and the half hour before),
    replayed under once-per-sender and under the full defence."""
    texts_path, truth_path = write_scenario("raid2017", 3, tmp_path, LINE, 0.2)
    truth = truth_of(truth_path)
    start = datetime.fromisoformat(truth["raid"]["start"])
    window = tmp_path / "raid_start.jsonl"
    with texts_path.open(encoding="utf-8") as source, window.open("w") as target:
        for line in source:
            at = datetime.fromisoformat(json.loads(line)["at"])
            if start - timedelta(minutes=30) <= at <= start + timedelta(minutes=20):
                target.write(line)
    naive = _replies_by_role(window, truth, tmp_path / "once", "once_per_sender")
    ours = _replies_by_role(window, truth, tmp_path / "ours", "antirelou")
    assert naive[RAIDER] >= 30, "once-per-sender answers nearly every raiding phone"
    assert ours[RAIDER] <= naive[RAIDER] // 3
    assert ours[TESTER] + ours[GENUINE] >= naive[TESTER] + naive[GENUINE] - 1
    assert ours[NEVER] == naive[NEVER] == 0
