"""Fixtures for the provider tests: the local upstream and config entries pointing at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.providers.upstream import Upstream, start_upstream

KINDS = ("openai", "anthropic", "gemini", "ollama", "openai_responses")

FAST_RETRIES = {"backoff_base_s": 0.01, "backoff_max_s": 0.05}


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    """A fresh local upstream per test (plans and records do not leak between tests)."""
    server, runner = await start_upstream()
    yield server
    await runner.cleanup()


def entry(kind: str, upstream: Upstream, model: str, **extra: Any) -> dict[str, Any]:
    """A ``providers.<name>`` config entry of type ``kind`` served by ``upstream``."""
    base_url = upstream.url + "/v1" if kind.startswith("openai") else upstream.url
    config: dict[str, Any] = {"type": kind, "base_url": base_url, "model": model, **FAST_RETRIES}
    if kind != "ollama":
        config["api_key"] = "test-key"
    return {**config, **extra}


def usage_details(kind: str) -> dict[str, int]:
    """The usage details a plain text reply of ``kind`` reports besides its two counts: the
    Responses API always sends its cached and reasoning counts, 0 or not."""
    return {"cached_input_tokens": 0, "reasoning_tokens": 0} if kind == "openai_responses" else {}
