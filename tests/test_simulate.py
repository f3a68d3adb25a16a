"""`antirelou simulate`: deterministic, well-formed scenarios, and the defence against one."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

import phonenumbers
import pytest
from click.testing import CliRunner

from antirelou.cli import main
from antirelou.phone import SenderKind, classify
from antirelou.replay import read_scenario, run_replay
from antirelou.simulate import GENUINE, NEVER, RAIDER, SCENARIOS, TESTER, build, write_scenario
from tests.helpers import LINE, make_settings


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    out = tmp_path_factory.mktemp("scenarios")
    return {name: write_scenario(name, 7, out, LINE) for name in SCENARIOS}


def truth_of(path: Path) -> dict[str, object]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_same_seed_same_bytes_other_seed_other_texts(name: str, tmp_path: Path) -> None:
    first, _ = write_scenario(name, 7, tmp_path / "a", LINE)
    again, _ = write_scenario(name, 7, tmp_path / "b", LINE)
    other, _ = write_scenario(name, 8, tmp_path / "c", LINE)
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other.read_bytes()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_replayable_in_time_order_and_every_sender_has_a_role(
    name: str, written: dict[str, tuple[Path, Path]]
) -> None:
    texts_path, truth_path = written[name]
    with texts_path.open(encoding="utf-8") as handle:
        texts = list(read_scenario(handle))
    assert texts, "a scenario holds texts"
    assert all(a.at <= b.at for a, b in itertools.pairwise(texts))
    assert len({t.id for t in texts}) == len(texts)
    assert {t.to for t in texts} == {LINE}
    roles = truth_of(truth_path)["roles"]
    assert isinstance(roles, dict)
    assert {t.sender for t in texts} == set(roles)


def test_raid2017_has_the_shape_of_the_press_accounts() -> None:
    scenario = build("raid2017", 1)
    roles = Counter(scenario.roles.values())
    assert 2500 <= roles[TESTER] <= 3500  # about 3,000 testers in 48 h
    assert 500 <= roles[RAIDER] <= 700  # about 600 phones
    raid_start, raid_end = scenario.raids[0]
    assert raid_end - raid_start == timedelta(hours=4)
    raid_texts = [t for t in scenario.texts if scenario.roles[t.sender] == RAIDER]
    assert 15_000 <= len(raid_texts) <= 22_000
    assert all(raid_start <= t.at <= raid_end for t in raid_texts)
    per_phone = Counter(t.sender for t in raid_texts)
    assert max(per_phone.values()) >= 200, "a few phones send hundreds"
    assert sorted(per_phone.values())[len(per_phone) // 2] <= 20, "most send a few"
    genuine_hours = Counter(
        t.at.hour for t in scenario.texts if scenario.roles[t.sender] == GENUINE
    )
    night = sum(n for hour, n in genuine_hours.items() if hour >= 19 or hour < 4)
    assert night > 0.7 * sum(genuine_hours.values()), "men text the number at night-life hours"


def test_genuine_and_testers_text_from_valid_french_mobiles() -> None:
    scenario = build("raid2017", 1)
    people = [s for s, role in scenario.roles.items() if role in (GENUINE, TESTER)]
    for sender in people:
        parsed = phonenumbers.parse(sender)
        assert phonenumbers.is_valid_number(parsed)
        assert phonenumbers.region_code_for_number(parsed) == "FR"


def test_never_answer_senders_really_cannot_be_answered() -> None:
    scenario = build("never_answer", 1)
    never = [s for s, role in scenario.roles.items() if role == NEVER]
    kinds = Counter(
        "foreign" if number.country not in (None, "FR") else number.kind
        for number in map(classify, never)
    )
    assert kinds["foreign"] > 0
    assert kinds[SenderKind.PREMIUM_RATE] > 0
    assert kinds[SenderKind.SHORT_CODE] > 0
    assert kinds[SenderKind.ALPHANUMERIC] > 0
    assert kinds[SenderKind.ANSWERABLE] == 0


def test_media_surge_has_no_raider_and_swarm_one_text_per_raider() -> None:
    surge = build("media_surge", 1)
    assert RAIDER not in surge.roles.values()
    assert not surge.raids
    swarm = build("swarm", 1)
    per_raider = Counter(t.sender for t in swarm.texts if swarm.roles[t.sender] == RAIDER)
    assert len(per_raider) >= 3000
    assert set(per_raider.values()) == {1}


def test_cli_writes_a_scenario(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["simulate", "slow_drip", "--seed", "3", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "slow_drip.jsonl").exists()
    assert (tmp_path / "slow_drip.truth.json").exists()
    unknown = CliRunner().invoke(main, ["simulate", "nope", "--out", str(tmp_path)])
    assert unknown.exit_code == 2
    assert "known:" in unknown.output


def _raider_replies(scenario: Path, truth: Path, out: Path, mode: str) -> tuple[int, int]:
    """(replies to raiders, replies to never-answer senders) after a replay under `mode`."""
    settings = make_settings(
        "sqlite:///unused.db",
        defence={"mode": mode},
        budget={"daily_cap": 10_000, "total": 100_000},
        evidence={"key_path": str(out / "evidence.key")},
    )
    run_replay(scenario, settings, out, timedelta(hours=1), progress=False)
    roles = truth_of(truth)["roles"]
    assert isinstance(roles, dict)
    lines = (out / "outbound.jsonl").read_text(encoding="utf-8").splitlines()
    sent = [json.loads(raw)["to"] for raw in lines]
    return sum(roles[to] == RAIDER for to in sent), sum(roles[to] == NEVER for to in sent)


def test_the_defence_spends_far_less_on_a_slow_insulting_drip_than_once_per_sender(
    written: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    scenario, truth = written["slow_drip"]
    naive, _ = _raider_replies(scenario, truth, tmp_path / "once", "once_per_sender")
    ours, never = _raider_replies(scenario, truth, tmp_path / "ours", "antirelou")
    assert naive >= 50, "once-per-sender answers almost every insulting number"
    # Most drip texts are insults or threats and get nothing; a mean but not abusive first
    # text ("Tu mérites rien") still gets the reply, as it should.
    assert ours <= naive // 3, "abusive first texts get no reply"
    assert never == 0
