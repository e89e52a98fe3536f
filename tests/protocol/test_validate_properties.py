"""Whatever a client sends, validation answers a typed message or a ProtocolError."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from server.errors import ProtocolError
from server.protocol.codec import JsonCodec, MsgpackCodec
from server.protocol.envelope import Cancel, Ping, Resume, Start
from server.protocol.validate import InputLimits, parse_client_message, parse_http_request

LIMITS = InputLimits(max_prompt_chars=1000, max_messages=8)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    [
        "type",
        "session",
        "data",
        "prompt",
        "messages",
        "params",
        "provider",
        "model",
        "role",
        "content",
        "resume_token",
        "after_seq",
        "max_tokens",
        "temperature",
        "on_disconnect",
    ]
)
TYPES = st.sampled_from(["start", "cancel", "resume", "ping", "stop", "", "START"])
MESSAGES = st.one_of(
    VALUES,
    st.fixed_dictionaries(
        {"type": TYPES},
        optional={
            "session": VALUES | st.text(max_size=70),
            "data": st.dictionaries(FIELDS, VALUES),
        },
    ),
)


@settings(max_examples=500)
@given(MESSAGES)
def test_any_object_is_a_typed_message_or_a_protocol_error(obj: Any) -> None:
    try:
        message = parse_client_message(obj, LIMITS)
    except ProtocolError as exc:
        assert exc.message and exc.code.value in {"bad_request", "invalid_field", "unknown_type"}
        return
    assert isinstance(message, Start | Cancel | Resume | Ping)


@settings(max_examples=300)
@given(
    st.dictionaries(FIELDS | st.sampled_from(["llm_params", "session_id", "chunk_delay"]), VALUES)
)
def test_any_http_body_is_a_start_or_a_protocol_error(body: dict[str, Any]) -> None:
    try:
        assert isinstance(parse_http_request(body, LIMITS, default_session="x"), Start)
    except ProtocolError as exc:
        assert exc.message


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_fail_cleanly(payload: bytes) -> None:
    for codec, data in (
        (JsonCodec(), payload.decode("utf-8", "replace")),
        (MsgpackCodec(), payload),
    ):
        try:
            codec.decode(data)
        except ProtocolError as exc:
            assert exc.code.value == "bad_request"
