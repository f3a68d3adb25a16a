"""The webhook form decoder gives what the standard library's parse_qsl gives, errors
included, for any text: it replaced parse_qsl on the hot path and must never differ."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from antirelou.web.requests import form_pairs

# Texts made of what forms are made of, escapes (valid or not) and any character.
PIECES = st.sampled_from(["&", "=", "+", "%", "%2B", "%e9", "%C3%A9", "%ZZ", "%F", "%ff", ";"])
FORMISH = st.lists(PIECES | st.text(max_size=6), max_size=12).map("".join)


def reference(text: str) -> list[tuple[str, str]] | type[Exception]:
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        return type(exc)


def ours(text: str) -> list[tuple[str, str]] | type[Exception]:
    try:
        return form_pairs(text)
    except (ValueError, UnicodeDecodeError) as exc:
        return type(exc)


@given(FORMISH)
def test_any_text_decodes_as_parse_qsl_decodes_it(text: str) -> None:
    assert ours(text) == reference(text)


@given(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=20)), max_size=8))
def test_what_a_provider_encodes_comes_back_as_it_was(pairs: list[tuple[str, str]]) -> None:
    text = "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in pairs)
    assert form_pairs(text) == (pairs if text else [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("ToCity=&Body=Salut+%C3%A7a+va", [("ToCity", ""), ("Body", "Salut ça va")]),
        ("From=%2B33612345678", [("From", "+33612345678")]),
        ("a=1=2", [("a", "1=2")]),
    ],
)
def test_twilio_shaped_forms(text: str, expected: list[tuple[str, str]]) -> None:
    assert form_pairs(text) == expected


@pytest.mark.parametrize("text", ["a=1&&b=2", "novalue", "a=%C3", "&"])
def test_malformed_forms_are_refused(text: str) -> None:
    with pytest.raises((ValueError, UnicodeDecodeError)):
        form_pairs(text)
