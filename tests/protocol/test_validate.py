"""parse_client_message and parse_http_request: typed messages or a named field."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import ErrorCode, ProtocolError
from server.protocol.envelope import Cancel, Message, Ping, Resume, Start, Unwatch, Watch
from server.protocol.validate import (
    InputLimits,
    message_ref,
    parse_client_message,
    parse_http_request,
)

LIMITS = InputLimits(max_prompt_chars=50, max_messages=3)


def parse(obj: Any) -> Any:
    return parse_client_message(obj, LIMITS)


def test_start_with_a_prompt() -> None:
    message = parse({"type": "start", "session": "a.b:c-1_2", "data": {"prompt": "Hi"}})
    assert message == Start(session="a.b:c-1_2", messages=(Message("user", "Hi"),))


def test_start_with_messages_params_and_options() -> None:
    message = parse(
        {
            "type": "start",
            "session": "s",
            "data": {
                "messages": [
                    {"role": "system", "content": "Be brief"},
                    {"role": "user", "content": "Q"},
                ],
                "prompt": "and?",
                "provider": "sim",
                "model": "m",
                "params": {"temperature": 0.5, "max_tokens": 9, "provider_options": {"x": [1]}},
                "chunk_delay_ms": 5,
                "on_disconnect": "detach",
            },
        }
    )
    assert isinstance(message, Start)
    assert [m.role for m in message.messages] == ["system", "user", "user"]
    assert message.params == {"temperature": 0.5, "max_tokens": 9, "provider_options": {"x": [1]}}
    assert message.chunk_delay_ms == 5.0 and message.on_disconnect == "detach"


def test_cancel_resume_and_ping() -> None:
    assert parse({"type": "cancel", "session": "s"}) == Cancel("s")
    resume = {"type": "resume", "session": "s", "data": {"resume_token": "t", "after_seq": 4}}
    assert parse(resume) == Resume("s", "t", 4)
    assert parse({"type": "ping", "data": {"k": 1}}) == Ping({"k": 1})
    assert parse({"type": "ping"}) == Ping({})


def test_watch_and_unwatch() -> None:
    watch = {"type": "watch", "session": "s", "data": {"resume_token": "t", "after_seq": 4}}
    assert parse(watch) == Watch("s", "t", 4)
    assert parse({**watch, "data": {"resume_token": "t"}}) == Watch("s", "t", -1)
    assert parse({"type": "unwatch", "session": "s"}) == Unwatch("s")


START: dict[str, Any] = {"type": "start", "session": "s", "data": {"prompt": "Hi"}}


def start_with(**data: Any) -> dict[str, Any]:
    return {**START, "data": {**START["data"], **data}}


@pytest.mark.parametrize(
    ("obj", "code", "field"),
    [
        ([1, 2], ErrorCode.BAD_REQUEST, "object"),
        ("start", ErrorCode.BAD_REQUEST, "object"),
        ({"session": "s"}, ErrorCode.INVALID_FIELD, "type"),
        ({"type": 7}, ErrorCode.INVALID_FIELD, "type"),
        ({"type": "launch"}, ErrorCode.UNKNOWN_TYPE, "launch"),
        ({**START, "session": ""}, ErrorCode.INVALID_FIELD, "session"),
        ({**START, "session": "x" * 65}, ErrorCode.INVALID_FIELD, "session"),
        ({**START, "session": "a b"}, ErrorCode.INVALID_FIELD, "session"),
        ({**START, "session": 12}, ErrorCode.INVALID_FIELD, "session"),
        ({"type": "start", "data": {"prompt": "x"}}, ErrorCode.INVALID_FIELD, "session"),
        ({**START, "data": []}, ErrorCode.INVALID_FIELD, "data"),
        (start_with(prompt=""), ErrorCode.INVALID_FIELD, "data.prompt"),
        (start_with(prompt="   "), ErrorCode.INVALID_FIELD, "data.prompt"),
        (start_with(prompt=5), ErrorCode.INVALID_FIELD, "data.prompt"),
        ({**START, "data": {}}, ErrorCode.INVALID_FIELD, "data.prompt"),
        (start_with(prompt="x" * 51), ErrorCode.INVALID_FIELD, "data.prompt"),
        (start_with(messages=[]), ErrorCode.INVALID_FIELD, "data.messages"),
        (start_with(messages=[{"role": "bot", "content": "x"}]), ErrorCode.INVALID_FIELD, "role"),
        (start_with(messages=[{"role": "user"}]), ErrorCode.INVALID_FIELD, "content"),
        (
            start_with(messages=[{"role": "user", "content": "x"}] * 4),
            ErrorCode.INVALID_FIELD,
            "messages",
        ),
        (start_with(provider=3), ErrorCode.INVALID_FIELD, "data.provider"),
        (start_with(params=[]), ErrorCode.INVALID_FIELD, "data.params"),
        (start_with(params={"max_tokens": 0}), ErrorCode.INVALID_FIELD, "max_tokens"),
        (start_with(params={"max_tokens": 1e30}), ErrorCode.INVALID_FIELD, "max_tokens"),
        (start_with(params={"max_tokens": True}), ErrorCode.INVALID_FIELD, "max_tokens"),
        (start_with(params={"temperature": "hot"}), ErrorCode.INVALID_FIELD, "temperature"),
        (start_with(params={"temperature": float("nan")}), ErrorCode.INVALID_FIELD, "temperature"),
        (start_with(chunk_delay_ms=-1), ErrorCode.INVALID_FIELD, "chunk_delay_ms"),
        (start_with(on_disconnect="later"), ErrorCode.INVALID_FIELD, "on_disconnect"),
        ({"type": "cancel"}, ErrorCode.INVALID_FIELD, "session"),
        ({"type": "unwatch"}, ErrorCode.INVALID_FIELD, "session"),
        ({"type": "watch", "session": "s", "data": {}}, ErrorCode.INVALID_FIELD, "resume_token"),
        (
            {"type": "watch", "session": "s", "data": {"resume_token": "t", "after_seq": "x"}},
            ErrorCode.INVALID_FIELD,
            "after_seq",
        ),
        ({"type": "resume", "session": "s", "data": {}}, ErrorCode.INVALID_FIELD, "resume_token"),
        (
            {"type": "resume", "session": "s", "data": {"resume_token": "t", "after_seq": -2}},
            ErrorCode.INVALID_FIELD,
            "after_seq",
        ),
    ],
)
def test_bad_messages_name_their_fault(obj: Any, code: ErrorCode, field: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse(obj)
    assert caught.value.code is code
    assert field in caught.value.message


def test_error_refs_name_the_message_even_with_an_invalid_session() -> None:
    assert message_ref({"type": "start", "session": "a b"}) == {"type": "start", "session": "a b"}
    assert message_ref({"type": "ping"}) == {"type": "ping"}
    assert message_ref([1]) == {}


def test_http_request_maps_llm_params_and_seconds_of_chunk_delay() -> None:
    body = {
        "prompt": "Hi",
        "provider": "sim",
        "session_id": "abc",
        "llm_params": {"model": "m2", "max_tokens": 3},
        "chunk_delay": 0.05,
    }
    start = parse_http_request(body, LIMITS, default_session="gen")
    assert start.session == "abc" and start.model == "m2"
    assert start.params == {"max_tokens": 3} and start.chunk_delay_ms == 50.0
    assert parse_http_request({"prompt": "x"}, LIMITS, default_session="gen").session == "gen"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "x", "session_id": "a b"}, "session_id"),
        ({"prompt": "x", "llm_params": 3}, "llm_params"),
        ({"prompt": "x", "chunk_delay": 60}, "chunk_delay"),
        ({}, "prompt"),
    ],
)
def test_http_request_errors_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError, match=field):
        parse_http_request(body, LIMITS, default_session="gen")
