"""POST /v1/chat/completions and GET /v1/models with the unmodified openai Python SDK."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from server.app import RunningServer
from server.config import Config
from server.state import MANAGER, TALLIES
from tests._sse import parse_sse
from tests._wait import eventually
from tests.conftest import ConfigFactory
from tests.providers.conftest import entry
from tests.providers.upstream import Reply, Upstream

Start = Callable[[Config], Any]
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello there"}]


async def openai_client(server: RunningServer, **options: Any) -> openai.AsyncOpenAI:
    """The SDK's client for ``server`` (built in a thread: it reads CA files)."""
    options = {"api_key": "unused", "max_retries": 0, **options}
    return await asyncio.to_thread(openai.AsyncOpenAI, base_url=server.url + "/v1", **options)


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = await openai_client(server)
    yield sdk
    await sdk.close()


async def native_text(server: RunningServer, body: dict[str, Any]) -> str:
    async with aiohttp.ClientSession() as http:
        response = await http.post(server.url + "/api/stream", json=body)
        events, _ = parse_sse(await response.read())
    return "".join(e["data"]["content"] for e in events if e["type"] == "content_chunk")


async def test_streamed_text_equals_the_native_sse_route(
    server: RunningServer, client: openai.AsyncOpenAI
) -> None:
    stream = await client.chat.completions.create(
        model="sim/sim-1",
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=20,
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    native = await native_text(
        server, {"messages": HELLO, "llm_params": {"model": "sim-1", "max_tokens": 20}}
    )
    assert text == native and text.startswith("Hello there")
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_non_streaming_answer(server: RunningServer, client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="sim",
        messages=HELLO,
        max_tokens=5,
    )
    native = await native_text(server, {"messages": HELLO, "llm_params": {"max_tokens": 5}})
    assert completion.choices[0].message.content == native
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "sim/sim-1" and completion.usage is not None


async def test_the_stream_helper_accumulates_the_answer(client: openai.AsyncOpenAI) -> None:
    async with client.chat.completions.stream(
        model="sim",
        messages=HELLO,
        max_tokens=3,
    ) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.content is not None
    assert final.choices[0].message.content.startswith("Hello there")


async def test_models_lists_providers_and_provider_models(client: openai.AsyncOpenAI) -> None:
    models = [model.id async for model in client.models.list()]
    assert models == ["sim", "sim/sim-1"]


async def test_errors_are_the_sdk_own_exceptions(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model="sim", messages=HELLO, n=2)
    assert bad.value.param == "n" and bad.value.code == "invalid_field"
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="sim", messages=[], stream=True)


async def test_a_failure_mid_stream_is_an_api_error(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="sim",
        messages=HELLO,
        stream=True,
        extra_body={"params": {"fail_at": 4, "max_tokens": 10}},
    )
    texts = []
    with pytest.raises(openai.APIError) as failed:
        async for chunk in stream:
            texts.append(chunk.choices[0].delta.content or "")
    assert "".join(texts).startswith("Hello there")
    assert failed.value.code == "provider_error"


async def test_closing_a_stream_early_closes_the_upstream_connection(
    upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    server: RunningServer = await start(
        make_config(providers={"default": "up", "up": entry("openai", upstream, "m1")})
    )
    upstream.plan("m1", Reply(hang_after=1))
    sdk = await openai_client(server)
    stream = await sdk.chat.completions.create(model="up", messages=HELLO, stream=True)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    closed_at = asyncio.get_running_loop().time()
    await stream.close()
    record = upstream.requests("m1")[0]
    async with asyncio.timeout(1.0):
        await record.disconnected.wait()
    assert record.disconnected_at is not None and record.disconnected_at >= closed_at
    await sdk.close()


async def test_a_dropped_non_streaming_request_cancels_the_session(server: RunningServer) -> None:
    sim = server.app[MANAGER].providers.get("sim")
    sdk = await openai_client(server, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        await sdk.chat.completions.create(
            model="sim",
            messages=HELLO,
            extra_body={"params": {"hang_at": 1}},
        )
    await eventually(lambda: sim.stats.cancelled == 1)  # type: ignore[attr-defined]
    await sdk.close()


async def test_bearer_tokens_apply(start: Start, make_config: ConfigFactory) -> None:
    server: RunningServer = await start(make_config(auth={"tokens": ["s3cret"]}))
    for key, fails in (("wrong", True), ("s3cret", False)):
        sdk = await openai_client(server, api_key=key)
        try:
            if fails:
                with pytest.raises(openai.AuthenticationError):
                    await sdk.models.list()
            else:
                await sdk.chat.completions.create(model="sim", messages=HELLO, max_tokens=1)
        finally:
            await sdk.close()


async def test_rate_limits_apply(start: Start, make_config: ConfigFactory) -> None:
    server: RunningServer = await start(
        make_config(rate_limits={"starts_per_s": 0.001, "start_burst": 1})
    )
    sdk = await openai_client(server)
    await sdk.chat.completions.create(model="sim", messages=HELLO, max_tokens=1)
    with pytest.raises(openai.RateLimitError):
        await sdk.chat.completions.create(model="sim", messages=HELLO, max_tokens=1)
    await sdk.close()


@pytest.mark.parametrize(
    ("method", "path", "status", "shape"),
    [
        ("GET", "/v1/nope", 404, "openai"),
        ("GET", "/v1/chat/completions", 405, "openai"),
        ("POST", "/api/nope", 404, "tokenmux"),
    ],
)
async def test_unknown_routes_answer_json(
    server: RunningServer, method: str, path: str, status: int, shape: str
) -> None:
    async with aiohttp.ClientSession() as http:
        response = await http.request(method, server.url + path)
        assert response.status == status
        assert response.content_type == "application/json"
        error = (await response.json())["error"]
    keys = {"message", "type", "param", "code"} if shape == "openai" else {"code", "message"}
    assert set(error) == keys


async def test_streamed_events_are_counted_for_metrics(
    server: RunningServer, client: openai.AsyncOpenAI
) -> None:
    tally = server.app[TALLIES].sse
    stream = await client.chat.completions.create(
        model="sim", messages=HELLO, stream=True, max_tokens=4
    )
    chunks = [chunk async for chunk in stream]
    assert tally.events["content_chunk"] == len(chunks) - 2  # the role and finish chunks
    assert tally.events["stream_end"] == 1 and tally.bytes["content_chunk"] > 0
