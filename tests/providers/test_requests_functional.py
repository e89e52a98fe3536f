"""What each SDK puts on the wire for one tokenmux request: model, key, system prompt,
turns and generation parameters in each provider's own places."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from server.app import RunningServer
from server.config import Config, ProviderConfig
from server.protocol.envelope import Message
from server.providers.base import ProviderRequest
from server.providers.openai_chat import OpenAIProvider
from tests._client import WsClient, check_session
from tests.conftest import ConfigFactory
from tests.providers.conftest import KINDS, entry
from tests.providers.upstream import Record, Upstream

Start = Callable[[Config], Any]

TURNS = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Again"},
]


def openai_view(record: Record) -> dict[str, Any]:
    body = record.body
    return {
        "key": record.headers["Authorization"],
        "system": body["messages"][0]["content"],
        "turns": [(m["role"], m["content"]) for m in body["messages"][1:]],
        "temperature": body["temperature"],
        "max_tokens": body["max_tokens"],
    }


def anthropic_view(record: Record) -> dict[str, Any]:
    body = record.body
    assert "temperature" not in body  # API version 2026-10-21 rejects sampling parameters
    return {
        "key": record.headers["Authorization"],
        "system": body["system"],
        "turns": [(m["role"], m["content"]) for m in body["messages"]],
        "temperature": 0.25,
        "max_tokens": body["max_tokens"],
    }


def gemini_view(record: Record) -> dict[str, Any]:
    body = record.body
    roles = {"model": "assistant", "user": "user"}
    return {
        "key": record.headers["x-goog-api-key"],
        "system": body["systemInstruction"]["parts"][0]["text"],
        "turns": [(roles[c["role"]], c["parts"][0]["text"]) for c in body["contents"]],
        "temperature": body["generationConfig"]["temperature"],
        "max_tokens": body["generationConfig"]["maxOutputTokens"],
    }


def ollama_view(record: Record) -> dict[str, Any]:
    body = record.body
    assert body["stream"] is True
    return {
        "key": "Bearer test-key",  # Ollama needs none; checked apart below
        "system": body["messages"][0]["content"],
        "turns": [(m["role"], m["content"]) for m in body["messages"][1:]],
        "temperature": body["options"]["temperature"],
        "max_tokens": body["options"]["num_predict"],
    }


def responses_view(record: Record) -> dict[str, Any]:
    body = record.body
    assert body["stream"] is True and body["store"] is False

    def text(content: Any) -> str:
        return content if isinstance(content, str) else content[0]["text"]

    return {
        "key": record.headers["Authorization"],
        "system": body["instructions"],
        "turns": [(m["role"], text(m["content"])) for m in body["input"]],
        "temperature": body["temperature"],
        "max_tokens": body["max_output_tokens"],
    }


VIEWS = {"openai": openai_view, "anthropic": anthropic_view, "gemini": gemini_view}
VIEWS |= {"ollama": ollama_view, "openai_responses": responses_view}


@pytest.mark.parametrize("kind", KINDS)
async def test_request_maps_onto_the_providers_parameters(
    kind: str, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    """Config params are defaults (temperature), request params override/extend them."""
    config = entry(kind, upstream, "m1", params={"temperature": 0.25, "max_tokens": 5})
    server: RunningServer = await start(make_config(providers={"p": config}))
    client = await WsClient.connect(server.url)
    await client.send(
        {
            "type": "start",
            "session": "s1",
            "data": {
                "provider": "p",
                "messages": TURNS,
                "system": "Be brief.",
                "params": {"max_tokens": 33},
            },
        }
    )
    await client.until_ended({"s1"})
    assert check_session(client.events["s1"])["reason"] == "complete"
    (record,) = upstream.requests("m1")
    assert VIEWS[kind](record) == {
        "key": "Bearer test-key",
        "system": "Be brief.",
        "turns": [(t["role"], t["content"]) for t in TURNS],
        "temperature": 0.25,
        "max_tokens": 33,
    } | ({"key": "test-key"} if kind == "gemini" else {})
    if kind == "ollama":
        assert "Authorization" not in record.headers
    await client.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_request_model_overrides_the_configured_one(
    kind: str, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    server: RunningServer = await start(make_config(providers={"p": entry(kind, upstream, "m1")}))
    client = await WsClient.connect(server.url)
    await client.start("s1", provider="p", model="other-model")
    await client.until_ended({"s1"})
    assert check_session(client.events["s1"])["reason"] == "complete"
    assert len(upstream.requests("other-model")) == 1 and not upstream.requests("m1")
    await client.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_simulator_knob_is_invalid_field_and_never_sent(
    kind: str, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    """The simulator's knobs are its alone: a real provider refuses them, naming the key."""
    server: RunningServer = await start(make_config(providers={"p": entry(kind, upstream, "m1")}))
    client = await WsClient.connect(server.url)
    await client.start("s1", provider="p", params={"tokens_per_second": 5})
    await client.until_ended({"s1"})
    events = client.events["s1"]
    assert check_session(events)["reason"] == "error"
    assert events[-2]["data"]["code"] == "invalid_field"
    assert events[-2]["data"]["message"].startswith("params.tokens_per_second:")
    assert events[-2]["data"]["retryable"] is False
    assert not upstream.records
    await client.close()


@pytest.mark.parametrize(
    ("base_url", "key"),
    [
        (None, "max_completion_tokens"),
        ("https://api.openai.com/v1", "max_completion_tokens"),
        ("https://api.deepseek.com", "max_tokens"),
        ("http://127.0.0.1:11434/v1", "max_tokens"),
    ],
)
def test_openai_names_max_tokens_as_the_server_expects(base_url: str | None, key: str) -> None:
    """OpenAI proper wants max_completion_tokens; compatible servers know max_tokens."""
    config = ProviderConfig(type="openai", model="m", api_key="k", base_url=base_url)
    request = ProviderRequest(messages=(Message("user", "hi"),), params={"max_tokens": 9})
    assert OpenAIProvider("p", config).request_params(request) == {key: 9}
