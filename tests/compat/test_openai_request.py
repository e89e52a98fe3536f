"""Chat Completions requests read as tokenmux requests (PROTOCOL.md §10)."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import ErrorCode, TokenmuxError
from server.protocol.openai_request import chat_request_body, openai_error_body

PROVIDERS = ("sim", "anthropic")


def test_full_request_maps_field_by_field() -> None:
    request = chat_request_body(
        {
            "model": "anthropic/claude-x",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "https://example.org/a.png"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "look", "arguments": '{"x":1}'},
                        }
                    ],
                },
                {
                    "role": "tool",
                    "tool_call_id": "c1",
                    "content": [{"type": "text", "text": "a cat"}],
                },
            ],
            "stream": True,
            "stream_options": {"include_usage": True},
            "tools": [
                {"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}
            ],
            "tool_choice": {"type": "function", "function": {"name": "look"}},
            "max_completion_tokens": 50,
            "temperature": 0.5,
            "top_p": 0.9,
            "stop": "END",
            "reasoning_effort": "minimal",
            "params": {"provider_options": {"k": 1}},
            "n": 1,
            "user": "u-1",
        },
        PROVIDERS,
        session_id="s1",
    )
    assert request.stream and request.include_usage
    assert request.body == {
        "session_id": "s1",
        "provider": "anthropic",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image", "url": "https://example.org/a.png"},
                ],
            },
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "c1", "name": "look", "arguments": {"x": 1}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
        ],
        "llm_params": {
            "provider_options": {"k": 1},
            "model": "claude-x",
            "max_tokens": 50,
            "temperature": 0.5,
            "top_p": 0.9,
            "stop": ["END"],
        },
        "tools": [{"name": "look", "parameters": {"type": "object"}}],
        "tool_choice": {"name": "look"},
        "reasoning": {"effort": "low"},
    }


def test_a_provider_name_alone_is_its_default_model() -> None:
    request = chat_request_body(
        {"model": "sim", "messages": [{"role": "user", "content": "hi"}]}, PROVIDERS, session_id="s"
    )
    assert request.body["provider"] == "sim" and "model" not in request.body["llm_params"]
    assert not request.stream and not request.include_usage


@pytest.mark.parametrize("model", ["gpt-4o", "sim/", "other/x", ""])
def test_unknown_models(model: str) -> None:
    with pytest.raises(TokenmuxError) as caught:
        chat_request_body(
            {"model": model, "messages": [{"role": "user", "content": "x"}]},
            PROVIDERS,
            session_id="s",
        )
    expected = ErrorCode.INVALID_FIELD if model == "" else ErrorCode.MODEL_NOT_FOUND
    assert caught.value.code == expected


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"stream": "yes"}, "stream"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [{"function": {"name": "f", "arguments": "{"}}],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
    ],
)
def test_unsupported_fields_are_refused_by_name(extra: dict[str, Any], param: str) -> None:
    body = {"model": "sim", "messages": [{"role": "user", "content": "x"}], **extra}
    with pytest.raises(TokenmuxError) as caught:
        chat_request_body(body, PROVIDERS, session_id="s")
    payload = {"code": caught.value.code.value, "message": caught.value.message}
    assert openai_error_body(payload, 400)["error"] == {
        "message": caught.value.message,
        "type": "invalid_request_error",
        "param": param,
        "code": "invalid_field",
    }
