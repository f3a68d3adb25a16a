"""Whatever a webhook carries, the parsers answer a value or MalformedRequest, never a crash
(which the web layer would turn into a 500 and the provider into endless retries)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from antirelou.providers import android, plivo, vonage
from antirelou.providers.errors import MalformedRequest

VONAGE_KEYS = st.sampled_from(
    ["messageId", "msisdn", "to", "text", "type", "concat", "concat-ref", "concat-total",
     "concat-part", "status", "err-code", "price", "client-ref"]
) | st.text(max_size=10)  # fmt: skip
PLIVO_KEYS = st.sampled_from(
    ["MessageUUID", "ParentMessageUUID", "From", "To", "Text", "MediaCount", "Status",
     "ErrorCode", "TotalAmount"]
) | st.text(max_size=10)  # fmt: skip
VALUES = st.sampled_from(
    ["", " ", "true", "0", "3", "256", "33612345678", "+33612345678", "delivered",
     "7a242edc-2f57-11e7-98c9-06ab0bf64327", "0B0000004B65F62F", "٣", "1e309"]
) | st.text(max_size=40)  # fmt: skip
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
ANDROID_EVENT = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["Ey6ECgOkVVFjz3CL48B8C", "", "a b"]) | JSON,
        "event": st.sampled_from(["sms:received", "sms:failed", "system:ping"]) | JSON,
        "payload": st.fixed_dictionaries(
            {},
            optional={
                "message": JSON,
                "sender": st.sampled_from(["+33612345678", "0612345678", ""]) | JSON,
                "phoneNumber": JSON,
                "recipient": st.sampled_from(["+33939000021", "+1"]) | JSON,
                "messageId": JSON,
            },
        )
        | JSON,
    },
)


def refusal(parse: Callable[[Any], object], value: Any) -> str | None:
    """The reason `parse` refused `value`, or None if it took it; anything else propagates."""
    try:
        parse(value)
    except MalformedRequest as exc:
        return exc.reason
    return None


@given(st.dictionaries(VONAGE_KEYS, VALUES, max_size=10))
def test_vonage_parsers_only_raise_malformed(params: dict[str, str]) -> None:
    for parse in (vonage.parse_inbound, vonage.parse_status):
        assert refusal(parse, params) != ""


@given(st.dictionaries(PLIVO_KEYS, VALUES, max_size=10))
def test_plivo_parsers_only_raise_malformed(params: dict[str, str]) -> None:
    for parse in (plivo.parse_inbound, plivo.parse_status):
        assert refusal(parse, params) != ""


@given(ANDROID_EVENT)
def test_android_parsers_only_raise_malformed(event: dict[str, Any]) -> None:
    for parse in (android.parse_inbound, android.parse_status, android.event_of):
        assert refusal(parse, event) != ""
    assert isinstance(android.flatten(event), dict)
