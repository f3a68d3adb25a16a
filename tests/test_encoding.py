"""SMS encoding and segmentation: the shared provider cases, boundaries, and the GSM-7 rewrite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from antirelou.encoding import Encoding, Segmentation, cost, gsm7_rewrite, segment

# The provider fixtures travel with the tests (tests/fixtures/providers, copied unchanged).
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "providers"
CASES_FILE = FIXTURES / "gsm7_ucs2_segmentation_cases.json"


def _load_cases() -> list[dict[str, Any]]:
    data = json.loads(CASES_FILE.read_text(encoding="utf-8"))
    cases: list[dict[str, Any]] = data["cases"]
    return cases


CASES = _load_cases()


def _case_id(case: dict[str, Any]) -> str:
    text: str = case["text"]
    shown = text if len(text) <= 24 else f"{text[:10]}...x{len(text)}"
    return f"{case['encoding']}:{shown!r}"


def test_fixture_file_has_cases() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_shared_fixture_case(case: dict[str, Any]) -> None:
    result = segment(case["text"])
    assert result.encoding == Encoding(case["encoding"])
    assert result.segments == case["segments"]
    if "units" in case:
        assert result.units == case["units"]
    if "non_gsm_chars" in case:
        assert list(result.offending) == case["non_gsm_chars"]


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_shared_fixture_case_rewrites_to_gsm7(case: dict[str, Any]) -> None:
    rewritten = gsm7_rewrite(case["text"])
    assert segment(rewritten).encoding is Encoding.GSM7
    if case["encoding"] == "GSM-7":
        assert rewritten == case["text"]


# The 2017 reply, as typed: ASCII apostrophes and plain spaces, accents é è à only.
REPLY_2017 = (
    "Bonjour ! Si vous lisez ce message, c'est que vous avez mis une femme mal à l'aise. "
    "Avec vous, elle ne s'est pas sentie en sécurité. Ce n'est pas très compliqué : si une "
    "femme dit non, inutile d'insister. Apprenez à respecter la liberté des femmes et leurs "
    "décisions. Merci."
)

# The same reply as a word processor would produce it: ’ and narrow no-break spaces.
REPLY_2017_TYPOGRAPHIC = (
    REPLY_2017.replace("'", "\u2019").replace(" !", "\u202f!").replace(" :", "\u00a0:")
)


def test_reply_2017_is_gsm7_in_two_parts() -> None:
    result = segment(REPLY_2017)
    assert result == Segmentation(
        encoding=Encoding.GSM7, units=274, segments=2, per_segment=153, offending=()
    )
    assert gsm7_rewrite(REPLY_2017) == REPLY_2017


def test_reply_2017_typographic_costs_five_parts_and_rewrites_back() -> None:
    result = segment(REPLY_2017_TYPOGRAPHIC)
    assert result.encoding is Encoding.UCS2
    assert result.units == 274
    assert result.segments == 5
    assert result.per_segment == 67
    assert result.offending == ("\u202f", "\u2019", "\u00a0")
    assert gsm7_rewrite(REPLY_2017_TYPOGRAPHIC) == REPLY_2017
    assert cost(REPLY_2017_TYPOGRAPHIC, 0.05) == pytest.approx(0.25)
    assert cost(REPLY_2017, 0.05) == pytest.approx(0.10)


EURO = "€"
EMOJI = "\U0001f600"


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments", "per_segment"),
    [
        pytest.param("", Encoding.GSM7, 0, 1, 160, id="empty-is-one-segment"),
        pytest.param("a" * 160, Encoding.GSM7, 160, 1, 160, id="gsm-160"),
        pytest.param("a" * 161, Encoding.GSM7, 161, 2, 153, id="gsm-161"),
        pytest.param("a" * 306, Encoding.GSM7, 306, 2, 153, id="gsm-153x2"),
        pytest.param("a" * 307, Encoding.GSM7, 307, 3, 153, id="gsm-153x2+1"),
        pytest.param("a" * 158 + EURO, Encoding.GSM7, 160, 1, 160, id="gsm-euro-fills-160"),
        pytest.param("a" * 159 + EURO, Encoding.GSM7, 161, 2, 153, id="gsm-euro-overflows"),
        # The escape pair would straddle septets 153/154: it moves whole to part 2, so 306
        # septets need 3 parts where a division would say 2.
        pytest.param(
            "a" * 152 + EURO + "a" * 152, Encoding.GSM7, 306, 3, 153, id="gsm-escape-at-boundary"
        ),
        pytest.param(
            "a" * 151 + EURO + "a" * 153, Encoding.GSM7, 306, 2, 153, id="gsm-escape-fits"
        ),
        pytest.param("ç" * 70, Encoding.UCS2, 70, 1, 70, id="ucs2-70"),
        pytest.param("ç" * 71, Encoding.UCS2, 71, 2, 67, id="ucs2-71"),
        pytest.param("ç" * 134, Encoding.UCS2, 134, 2, 67, id="ucs2-67x2"),
        pytest.param("ç" * 135, Encoding.UCS2, 135, 3, 67, id="ucs2-67x2+1"),
        pytest.param("a" * 68 + EMOJI, Encoding.UCS2, 70, 1, 70, id="ucs2-emoji-fills-70"),
        pytest.param("a" * 69 + EMOJI, Encoding.UCS2, 71, 2, 67, id="ucs2-emoji-overflows"),
        # The surrogate pair would straddle units 67/68: 134 units need 3 parts, not 2.
        pytest.param(
            "a" * 66 + EMOJI + "a" * 66, Encoding.UCS2, 134, 3, 67, id="ucs2-emoji-at-boundary"
        ),
        pytest.param("a" * 65 + EMOJI + "a" * 67, Encoding.UCS2, 134, 2, 67, id="ucs2-emoji-fits"),
        # One extension character does not change the encoding; one ç switches everything.
        pytest.param("{x}" * 10, Encoding.GSM7, 50, 1, 160, id="gsm-extension-chars"),
        pytest.param("\f", Encoding.GSM7, 2, 1, 160, id="gsm-form-feed-is-extension"),
        pytest.param("a" * 100 + "ç", Encoding.UCS2, 101, 2, 67, id="one-cedilla-switches"),
    ],
)
def test_boundaries(
    text: str, encoding: Encoding, units: int, segments: int, per_segment: int
) -> None:
    result = segment(text)
    assert (result.encoding, result.units, result.segments, result.per_segment) == (
        encoding,
        units,
        segments,
        per_segment,
    )


def test_offending_is_distinct_in_order_of_first_appearance() -> None:
    assert segment("«ô» ô ç « ç").offending == ("«", "ô", "»", "ç")
    assert segment("é è à ù É Ç ü").offending == ()


def test_encoding_is_a_str_enum() -> None:
    assert Encoding("GSM-7") is Encoding.GSM7
    assert Encoding("UCS-2") is Encoding.UCS2
    assert isinstance(Encoding.GSM7, str)
    assert str(Encoding.UCS2) == "UCS-2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("C\u2019est \u2018ok\u2019", "C'est 'ok'", id="single-quotes"),
        pytest.param("\u201cOui\u201d", '"Oui"', id="double-quotes"),
        pytest.param("\u00ab\u00a0Non\u00a0\u00bb", '"Non"', id="guillemets-nbsp"),
        pytest.param("\u00ab\u202fNon\u202f\u00bb", '"Non"', id="guillemets-narrow-nbsp"),
        pytest.param("dit \u00ab Non \u00bb.", 'dit "Non".', id="guillemets-plain-spaces"),
        pytest.param("Quoi\u202f?\u00a0Oui\u2009!", "Quoi ? Oui !", id="nbsp-before-punctuation"),
        pytest.param("Attends\u2026", "Attends...", id="ellipsis"),
        pytest.param("oui \u2013 non \u2014 peut-\u00eatre", "oui - non - peut-etre", id="dashes"),
        pytest.param("\u0152uvre c\u0153ur", "OEuvre coeur", id="oe-ligature"),
        pytest.param("Ça reçu", "Ça recu", id="cedilla-keeps-capital"),
        pytest.param(
            "\u00e2 \u00ea \u00ee \u00f4 \u00fb \u00eb \u00ef",
            "a e i o u e i",
            id="circumflex-diaeresis",
        ),
        pytest.param("\u00e1 \u00ed \u00f3 \u00fa", "a i o u", id="acute"),
        pytest.param("À bientôt", "A bientot", id="capital-a-grave"),
        pytest.param("ç é è à ù É ü ì ò Ä Ö Ñ Ü ß", "c é è à ù É ü ì ò Ä Ö Ñ Ü ß", id="gsm-kept"),
        pytest.param("e\u0301te\u0301 \u00e7", "été c", id="decomposed-input-composed-first"),
        pytest.param("\ufb01n \uff21", "fin A", id="nfkd-compatibility"),
        pytest.param("\u0141\u00f3d\u017a", "?odz", id="nfkd-then-question-mark"),
        pytest.param("ok " + EMOJI, "ok ?", id="emoji"),
        pytest.param("ok \U0001f44d\U0001f3fd", "ok ?", id="emoji-with-skin-tone"),
        pytest.param("a\u200bb\u00ad", "ab", id="invisible-format-dropped"),
        pytest.param("\ud55c", "?", id="one-question-mark-per-char"),
    ],
)
def test_gsm7_rewrite(text: str, expected: str) -> None:
    assert segment(text).encoding is Encoding.UCS2
    assert gsm7_rewrite(text) == expected
    assert segment(expected).encoding is Encoding.GSM7


def test_gsm7_rewrite_leaves_gsm7_text_alone() -> None:
    text = "Deja GSM : {ok} [oui] ~ ^ | \\ € \f @£$¥ ΔΦΓΛΩΠΨΣΘΞ ¡¿ §¤ \r\n"
    assert segment(text).encoding is Encoding.GSM7
    assert gsm7_rewrite(text) == text


def test_cost_is_per_segment() -> None:
    assert cost("", 0.07) == pytest.approx(0.07)
    assert cost("a" * 161, 0.07) == pytest.approx(0.14)
    assert cost("ç" * 135, 0.1) == pytest.approx(0.3)
    assert cost("a", 0.0) == 0.0


@pytest.mark.parametrize("price", [-0.01, float("nan"), float("inf")])
def test_cost_refuses_nonsense_price(price: float) -> None:
    with pytest.raises(ValueError, match="price per segment"):
        cost("a", price)


@given(st.text())
def test_rewrite_always_segments_as_gsm7(text: str) -> None:
    rewritten = gsm7_rewrite(text)
    assert segment(rewritten).encoding is Encoding.GSM7
    assert gsm7_rewrite(rewritten) == rewritten


@given(st.text(alphabet=st.characters(codec="utf-8")))
def test_segmentation_invariants(text: str) -> None:
    result = segment(text)
    single = 160 if result.encoding is Encoding.GSM7 else 70
    assert result.segments >= 1
    assert result.units <= result.segments * result.per_segment
    assert (result.segments == 1) == (result.units <= single)
    assert (result.encoding is Encoding.UCS2) == bool(result.offending)
    # Packing never loses more than one unit per part (a pair pushed to the next part).
    if result.segments > 1:
        assert result.units > (result.segments - 1) * (result.per_segment - 1)
