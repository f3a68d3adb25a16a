"""The reply decision: a pure function of the facts known when a text arrives.

It never touches the database or the clock, so every rule can be table-tested. The caller
(inbound.receive) gathers the facts inside the message's transaction and then *enforces*
the decision with database guards (the once-per-window claim, the budget reservation):
the policy says what should happen, the guards make sure it cannot happen twice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from antirelou.keywords import Keyword
from antirelou.phone import SenderKind, SenderNumber


class Action(enum.StrEnum):
    REPLY = "reply"
    HOLD = "hold"
    NONE = "none"


class Reason(enum.StrEnum):
    """Why a decision was taken. Stored with every message; stable names."""

    FIRST_IN_WINDOW = "first_text_in_window"
    DELAYED = "reply_delayed"
    ALREADY_REPLIED = "already_replied_in_window"
    OPT_OUT_KEYWORD = "opt_out_keyword"
    OPT_IN_KEYWORD = "opt_in_keyword"
    OPTED_OUT = "sender_opted_out"
    ALPHANUMERIC = "alphanumeric_sender"
    SHORT_CODE = "short_code"
    PREMIUM_RATE = "premium_rate"
    NOT_MOBILE = "not_mobile"
    INVALID_NUMBER = "invalid_number"
    COUNTRY = "country_not_allowed"
    OWN_LINE = "sender_is_a_line"
    UNKNOWN_LINE = "unknown_line"
    LINE_PAUSED = "line_paused"
    DAILY_CAP = "daily_cap_reached"
    POT_EXHAUSTED = "pot_exhausted"
    BLOCKED = "sender_blocked"
    # Raid defence (see floods.py and detect/).
    HELD_INCIDENT = "held_during_incident"
    ABUSIVE_FIRST_TEXT = "abusive_first_text"
    COPY_PASTE = "copy_paste_cluster"
    HIGH_VELOCITY = "high_velocity"
    NUMBER_BLOCK = "raid_number_block"
    EVERY_TEXT = "reply_to_every_text"


RAIDER_REASONS = frozenset(
    {Reason.ABUSIVE_FIRST_TEXT, Reason.COPY_PASTE, Reason.HIGH_VELOCITY, Reason.NUMBER_BLOCK}
)


class Mode(enum.StrEnum):
    """The full defence, and the two naive policies it is measured against."""

    ANTIRELOU = "antirelou"
    ONCE_PER_SENDER = "once_per_sender"
    EVERY_TEXT = "every_text"


_KIND_REASONS = {
    SenderKind.ALPHANUMERIC: Reason.ALPHANUMERIC,
    SenderKind.SHORT_CODE: Reason.SHORT_CODE,
    SenderKind.PREMIUM_RATE: Reason.PREMIUM_RATE,
    SenderKind.NOT_MOBILE: Reason.NOT_MOBILE,
    SenderKind.INVALID: Reason.INVALID_NUMBER,
}


@dataclass(frozen=True)
class BudgetSnapshot:
    """Money already committed, in micro-euros, and the caps it must stay under."""

    day_used: int
    day_cap: int
    total_used: int
    total_cap: int


@dataclass(frozen=True)
class LineRules:
    reply_delay: timedelta
    reply_window: timedelta
    allowed_countries: tuple[str, ...]


@dataclass(frozen=True)
class Facts:
    now: datetime
    rules: LineRules | None  # None: the text reached a number we do not run
    line_paused: bool
    sender: SenderNumber
    sender_is_line: bool
    keyword: Keyword | None
    opted_out: bool  # before this text
    last_reply_at: datetime | None
    reply_cost: int  # micro-euros
    budget: BudgetSnapshot
    mode: Mode = Mode.ANTIRELOU
    incident_open: bool = False
    raider: tuple[Reason, ...] = ()  # why this sender looks like a raider, if he does
    blocked: bool = False  # an operator blocked this sender


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: tuple[Reason, ...]
    due_at: datetime | None = None  # when the reply may go out

    def refused(self, reason: Reason) -> Decision:
        """The same text, but a database guard said no at the last moment."""
        return replace(self, action=Action.NONE, reasons=(reason,), due_at=None)


def decide(facts: Facts) -> Decision:
    """Reply once per sender per window, to answerable numbers only, within the caps.

    Under the full defence, senders that look like raiders get nothing, and during an
    incident new senders are held (not dropped): floods.py releases them later, the most
    genuine-looking first, at a pace the budget allows.
    """
    if facts.rules is None:
        return Decision(Action.NONE, (Reason.UNKNOWN_LINE,))
    blockers = _sender_blockers(facts, facts.rules) + _state_blockers(facts, facts.rules)
    if facts.mode is Mode.ANTIRELOU:
        blockers += list(facts.raider)
    if blockers:
        return Decision(Action.NONE, tuple(dict.fromkeys(blockers)))
    if facts.mode is Mode.ANTIRELOU and facts.incident_open:
        return Decision(Action.HOLD, (Reason.FIRST_IN_WINDOW, Reason.HELD_INCIDENT))
    return _reply(facts, facts.rules)


def _sender_blockers(facts: Facts, rules: LineRules) -> list[Reason]:
    sender = facts.sender
    if sender.kind is not SenderKind.ANSWERABLE:
        return [_KIND_REASONS[sender.kind]]
    reasons = []
    if sender.country not in rules.allowed_countries:
        reasons.append(Reason.COUNTRY)
    if facts.sender_is_line:
        reasons.append(Reason.OWN_LINE)
    return reasons


def _state_blockers(facts: Facts, rules: LineRules) -> list[Reason]:
    reasons = _consent_blockers(facts)
    if facts.blocked:
        reasons.append(Reason.BLOCKED)
    if facts.line_paused:
        reasons.append(Reason.LINE_PAUSED)
    every_text = facts.mode is Mode.EVERY_TEXT
    if not every_text and replied_within(facts.last_reply_at, facts.now, rules.reply_window):
        reasons.append(Reason.ALREADY_REPLIED)
    # A held reply reserves nothing yet: the release reserves it, when the budget allows.
    if facts.mode is Mode.ANTIRELOU and facts.incident_open:
        return reasons
    return reasons + _budget_blockers(facts.reply_cost, facts.budget)


def _consent_blockers(facts: Facts) -> list[Reason]:
    if facts.keyword is Keyword.OPT_OUT:
        return [Reason.OPT_OUT_KEYWORD]
    if facts.opted_out and facts.keyword is not Keyword.OPT_IN:
        return [Reason.OPTED_OUT]
    return []


def _budget_blockers(cost: int, budget: BudgetSnapshot) -> list[Reason]:
    reasons = []
    if budget.day_used + cost > budget.day_cap:
        reasons.append(Reason.DAILY_CAP)
    if budget.total_used + cost > budget.total_cap:
        reasons.append(Reason.POT_EXHAUSTED)
    return reasons


def _reply(facts: Facts, rules: LineRules) -> Decision:
    first = Reason.EVERY_TEXT if facts.mode is Mode.EVERY_TEXT else Reason.FIRST_IN_WINDOW
    reasons = [first]
    if facts.keyword is Keyword.OPT_IN:
        reasons.insert(0, Reason.OPT_IN_KEYWORD)
    if rules.reply_delay > timedelta(0):
        reasons.append(Reason.DELAYED)
    return Decision(Action.REPLY, tuple(reasons), due_at=facts.now + rules.reply_delay)


def replied_within(last_reply_at: datetime | None, now: datetime, window: timedelta) -> bool:
    """Whether a reply claimed at `last_reply_at` still covers `now`."""
    return last_reply_at is not None and now - last_reply_at < window
