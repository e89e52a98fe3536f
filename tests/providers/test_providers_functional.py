"""Every adapter, end to end: WebSocket client -> tokenmux -> official SDK -> local upstream.

Each test is parametrized over the four providers; the upstream's plan decides what the
provider does (tests/providers/upstream.py), and its records show what the SDK sent and
when it hung up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from server.app import RunningServer
from server.config import Config
from tests._client import WsClient, check_session
from tests.conftest import ConfigFactory
from tests.providers.conftest import KINDS, entry, usage_details
from tests.providers.upstream import Reply, Upstream
from tests.providers.wire import Script

Start = Callable[[Config], Any]


async def serve(start: Start, make_config: ConfigFactory, **providers: Any) -> RunningServer:
    server: RunningServer = await start(make_config(providers=providers))
    return server


async def run_session(server: RunningServer, provider: str, **data: Any) -> list[dict[str, Any]]:
    client = await WsClient.connect(server.url)
    await client.start("s1", provider=provider, **data)
    await client.until_ended({"s1"})
    await client.close()
    return client.events["s1"]


@pytest.mark.parametrize("kind", KINDS)
async def test_streams_the_exact_text_with_usage(
    kind: str, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    """The upstream's text arrives verbatim; its usage and finish reason come as metadata."""
    server = await serve(start, make_config, p=entry(kind, upstream, "m1"))
    text = "Grüße, wörld 👋 — streamed in pieces."
    upstream.plan("m1", Reply(text=text, chunks=5, input_tokens=12, output_tokens=9))
    events = await run_session(server, "p", prompt="Hello")
    end = check_session(events)
    assert end["reason"] == "complete" and end["text"] == text
    metadata = [e["data"] for e in events if e["type"] == "metadata"]
    usage = {"input_tokens": 12, "output_tokens": 9} | usage_details(kind)
    assert metadata[-1]["usage"] == usage
    assert metadata[-1]["finish_reason"] == "stop" and metadata[-1]["model"] == "m1"
    assert isinstance(metadata[-1]["ttft_ms"], int)
    assert end["usage"] == {**usage, "estimated": False}


@pytest.mark.parametrize("kind", KINDS)
async def test_rate_limit_then_success_is_retried(
    kind: str, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    """A 429 before the first chunk is retried; the client sees one clean stream."""
    server = await serve(start, make_config, p=entry(kind, upstream, "m1"))
    upstream.plan("m1", Reply(status=429, retry_after="0"), Reply(text="second time lucky"))
    end = check_session(await run_session(server, "p"))
    assert end["reason"] == "complete" and end["text"] == "second time lucky"
    assert len(upstream.requests("m1")) == 2


@pytest.mark.parametrize("kind", KINDS)
async def test_retry_after_is_honoured(
    kind: str, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    """The retry waits at least the upstream's Retry-After (1 s), not just the backoff."""
    server = await serve(start, make_config, p=entry(kind, upstream, "m1"))
    upstream.plan("m1", Reply(status=429, retry_after="1"))
    end = check_session(await run_session(server, "p"))
    assert end["reason"] == "complete"
    first, second = upstream.requests("m1")
    assert second.received_at - first.received_at >= 0.95


@pytest.mark.parametrize("kind", KINDS)
async def test_retry_after_beyond_the_cap_is_not_waited_for(
    kind: str, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    """A Retry-After above retry_after_max_s ends the session at once with the 429."""
    server = await serve(start, make_config, p=entry(kind, upstream, "m1", retry_after_max_s=5))
    upstream.plan("m1", Reply(status=429, retry_after="3600"))
    events = await run_session(server, "p")
    end = check_session(events)
    assert end["reason"] == "error" and end["duration_ms"] < 2000
    assert events[-2]["data"]["code"] == "provider_rate_limited"
    assert events[-2]["data"]["retryable"] is True
    assert len(upstream.requests("m1")) == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [401, 403])
async def test_auth_errors_are_not_retried(
    kind: str, status: int, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    server = await serve(start, make_config, p=entry(kind, upstream, "m1"))
    upstream.plan("m1", Reply(status=status))
    events = await run_session(server, "p")
    end = check_session(events)
    assert end["reason"] == "error"
    assert events[-2]["data"]["code"] == "provider_auth"
    assert events[-2]["data"]["retryable"] is False
    assert len(upstream.requests("m1")) == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [500, 529])
async def test_server_errors_are_retried_up_to_max_attempts(
    kind: str, status: int, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    """5xx and 529 (overloaded) are retryable: attempts run out, then provider_error."""
    server = await serve(start, make_config, p=entry(kind, upstream, "m1", max_attempts=2))
    upstream.plan("m1", Reply(status=status), Reply(status=status))
    events = await run_session(server, "p")
    assert check_session(events)["reason"] == "error"
    assert events[-2]["data"]["code"] == "provider_error"
    assert events[-2]["data"]["retryable"] is True
    assert len(upstream.requests("m1")) == 2


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "reply",
    [Reply(error_after=2), Reply(drop_after=2), Reply(truncate=True)],
    ids=["error-event", "tcp-drop", "no-final-frame"],
)
async def test_failure_after_the_first_chunk_ends_the_session(
    kind: str, reply: Reply, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    """In-stream error, dropped connection or missing final frame after text: `error` and
    `stream_end{error}`, never a silent restart and never success."""
    server = await serve(start, make_config, p=entry(kind, upstream, "m1"))
    upstream.plan("m1", reply)
    events = await run_session(server, "p")
    end = check_session(events)
    assert end["reason"] == "error"
    assert end["chunks"] == (3 if reply.truncate else 2)
    assert events[-2]["data"]["code"] == "provider_error"
    assert len(upstream.requests("m1")) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_fallback_serves_when_the_primary_fails_before_the_first_chunk(
    kind: str, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    """The primary (another kind) fails; this kind answers and a metadata event says so."""
    other = KINDS[(KINDS.index(kind) + 1) % len(KINDS)]
    primary = entry(other, upstream, "down", max_attempts=2, fallbacks=["backup"])
    server = await serve(start, make_config, main=primary, backup=entry(kind, upstream, "up"))
    upstream.plan("down", Reply(status=503), Reply(status=529))
    upstream.plan("up", Reply(text="from the backup"))
    events = await run_session(server, "main", model="down")
    end = check_session(events)
    assert end["reason"] == "complete" and end["text"] == "from the backup"
    assert events[0]["data"]["provider"] == "main"
    answered = next(e for e in events if e["type"] == "metadata")
    assert answered["data"] == {
        "provider": "backup",
        "model": "up",
        "fallback_from": "main",
        "attempt": 1,
    }
    assert answered["seq"] < next(e["seq"] for e in events if e["type"] == "content_chunk")
    assert len(upstream.requests("down")) == 2 and len(upstream.requests("up")) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_first_token_deadline_ends_with_provider_timeout(
    kind: str, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    """No first chunk in time: provider_timeout, and the waiting request is hung up."""
    config = entry(kind, upstream, "m1", first_token_timeout_s=0.3, max_attempts=1)
    server = await serve(start, make_config, p=config)
    upstream.plan("m1", Reply(header_delay_s=30))
    events = await run_session(server, "p")
    assert check_session(events)["reason"] == "error"
    assert events[-2]["data"]["code"] == "provider_timeout"
    record = upstream.requests("m1")[0]
    async with asyncio.timeout(1):
        await record.disconnected.wait()


@pytest.mark.parametrize("kind", KINDS)
async def test_stall_deadline_ends_with_provider_timeout(
    kind: str, upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    """The stream goes quiet after a chunk: provider_timeout, not a retry."""
    server = await serve(start, make_config, p=entry(kind, upstream, "m1", stall_timeout_s=0.3))
    upstream.plan("m1", Reply(hang_after=1))
    events = await run_session(server, "p")
    end = check_session(events)
    assert end["reason"] == "error" and end["chunks"] == 1
    assert events[-2]["data"]["code"] == "provider_timeout"
    assert len(upstream.requests("m1")) == 1
    async with asyncio.timeout(1):
        await upstream.requests("m1")[0].disconnected.wait()


async def test_openai_compatible_server_at_its_own_base_url(
    upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    """`type: openai` with another base_url (DeepSeek, vLLM, Ollama /v1) is served the same."""
    compat = entry("openai", upstream, "deepseek-chat", base_url=upstream.url + "/compat/v1")
    server = await serve(start, make_config, deepseek=compat)
    upstream.plan("deepseek-chat", Reply(text="compatible"))
    end = check_session(await run_session(server, "deepseek"))
    assert end["reason"] == "complete" and end["text"] == "compatible"
    (record,) = upstream.requests("deepseek-chat")
    assert record.path == "/compat/v1/chat/completions"
    assert record.body["stream_options"] == {"include_usage": True}


async def test_a_prompt_gemini_blocks_completes_as_content_filter_without_a_retry(
    upstream: Upstream, start: Start, make_config: ConfigFactory
) -> None:
    """Asking again would be refused the same way: one request, and a finished session."""
    server = await serve(start, make_config, p=entry("gemini", upstream, "m1"))
    upstream.plan("m1", Reply(script=Script(items=(), blocked="SAFETY")))
    events = await run_session(server, "p")
    end = check_session(events)
    assert end["reason"] == "complete" and end["chunks"] == 0
    metadata = [e["data"] for e in events if e["type"] == "metadata"]
    assert metadata[-1]["finish_reason"] == "content_filter"
    assert len(upstream.requests("m1")) == 1


async def test_the_session_survives_every_rich_event_of_the_simulator(
    start: Start, make_config: ConfigFactory
) -> None:
    """Reasoning, sources and refusals reach the session as provider events; it completes."""
    server = await serve(start, make_config, sim={"type": "sim", "model": "sim-1"})
    knobs = {"reasoning_tokens": 4, "sources": 2, "max_tokens": 3}
    end = check_session(await run_session(server, "sim", prompt="Hi", params=knobs))
    assert end["reason"] == "complete" and end["text"].startswith("Hi")
    refused = check_session(await run_session(server, "sim", params={"refusal": True}))
    assert refused["reason"] == "complete" and refused["chunks"] == 0
