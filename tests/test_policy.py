"""Table tests of the pure reply decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from antirelou.keywords import Keyword, keyword_of
from antirelou.phone import classify
from antirelou.policy import Action, BudgetSnapshot, Facts, LineRules, Reason, decide

NOW = datetime(2017, 10, 30, 16, 0, tzinfo=UTC)
RULES = LineRules(timedelta(0), timedelta(days=30), ("FR",))
PLENTY = BudgetSnapshot(day_used=0, day_cap=20_000_000, total_used=0, total_cap=3_700_000_000)
COST = 76_270


def facts(**changes: object) -> Facts:
    base = Facts(
        now=NOW,
        rules=RULES,
        line_paused=False,
        sender=classify("+33612345678"),
        sender_is_line=False,
        keyword=None,
        opted_out=False,
        last_reply_at=None,
        reply_cost=COST,
        budget=PLENTY,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


CASES = [
    ("first text", facts(), Action.REPLY, {Reason.FIRST_IN_WINDOW}),
    (
        "replied yesterday",
        facts(last_reply_at=NOW - timedelta(days=1)),
        Action.NONE,
        {Reason.ALREADY_REPLIED},
    ),
    (
        "window over",
        facts(last_reply_at=NOW - timedelta(days=30)),
        Action.REPLY,
        {Reason.FIRST_IN_WINDOW},
    ),
    ("STOP", facts(keyword=Keyword.OPT_OUT), Action.NONE, {Reason.OPT_OUT_KEYWORD}),
    ("opted out", facts(opted_out=True), Action.NONE, {Reason.OPTED_OUT}),
    (
        "START after opt-out",
        facts(opted_out=True, keyword=Keyword.OPT_IN),
        Action.REPLY,
        {Reason.OPT_IN_KEYWORD, Reason.FIRST_IN_WINDOW},
    ),
    ("short code", facts(sender=classify("36180")), Action.NONE, {Reason.SHORT_CODE}),
    ("alphanumeric", facts(sender=classify("MyShop")), Action.NONE, {Reason.ALPHANUMERIC}),
    ("premium rate", facts(sender=classify("+33899123456")), Action.NONE, {Reason.PREMIUM_RATE}),
    ("landline", facts(sender=classify("+33140000000")), Action.NONE, {Reason.NOT_MOBILE}),
    ("invalid", facts(sender=classify("+3361")), Action.NONE, {Reason.INVALID_NUMBER}),
    ("foreign", facts(sender=classify("+14155550123")), Action.NONE, {Reason.COUNTRY}),
    ("own line", facts(sender_is_line=True), Action.NONE, {Reason.OWN_LINE}),
    ("unknown line", facts(rules=None), Action.NONE, {Reason.UNKNOWN_LINE}),
    ("paused", facts(line_paused=True), Action.NONE, {Reason.LINE_PAUSED}),
    (
        "daily cap",
        facts(budget=replace(PLENTY, day_used=20_000_000 - COST + 1)),
        Action.NONE,
        {Reason.DAILY_CAP},
    ),
    (
        "exactly at daily cap",
        facts(budget=replace(PLENTY, day_used=20_000_000 - COST)),
        Action.REPLY,
        {Reason.FIRST_IN_WINDOW},
    ),
    (
        "pot empty",
        facts(budget=replace(PLENTY, total_used=3_700_000_000)),
        Action.NONE,
        {Reason.POT_EXHAUSTED},
    ),
    (
        "paused and opted out: every reason kept",
        facts(line_paused=True, opted_out=True),
        Action.NONE,
        {Reason.LINE_PAUSED, Reason.OPTED_OUT},
    ),
]


@pytest.mark.parametrize(("label", "given", "action", "reasons"), CASES, ids=[c[0] for c in CASES])
def test_decision_table(label: str, given: Facts, action: Action, reasons: set[Reason]) -> None:
    decision = decide(given)
    assert decision.action is action, label
    assert set(decision.reasons) == reasons


def test_reply_delay_sets_due_time() -> None:
    rules = replace(RULES, reply_delay=timedelta(hours=1))
    decision = decide(facts(rules=rules))
    assert decision.action is Action.REPLY
    assert decision.due_at == NOW + timedelta(hours=1)
    assert Reason.DELAYED in decision.reasons


def test_reply_without_delay_is_due_now() -> None:
    assert decide(facts()).due_at == NOW


@pytest.mark.parametrize(
    ("body", "keyword"),
    [
        ("STOP", Keyword.OPT_OUT),
        (" stop ", Keyword.OPT_OUT),
        ("Arrêt", Keyword.OPT_OUT),
        ("ARRET!", Keyword.OPT_OUT),
        ("Unsubscribe.", Keyword.OPT_OUT),
        ("stopall", Keyword.OPT_OUT),
        ("START", Keyword.OPT_IN),
        ("stop harassing me", None),
        ("Salut ça va ?", None),
        ("", None),
    ],
)
def test_keywords(body: str, keyword: Keyword | None) -> None:
    assert keyword_of(body) is keyword
