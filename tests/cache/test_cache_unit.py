"""The content cache's sans-I/O parts: keys, the entry format, the memory LRU."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from server.cache.base import cache_key, decode_entry, encode_entry
from server.cache.memory import MemoryCache
from server.config import config_from_mapping
from server.errors import ConfigError
from server.protocol.envelope import Message, ReasoningConfig, Tool
from server.providers.base import (
    Finish,
    Metadata,
    ProviderEvent,
    ProviderRequest,
    ReasoningDelta,
    Source,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

REQUEST = ProviderRequest(
    messages=(Message(role="user", content="Hi"),),
    model="m1",
    system="Be brief.",
    params={"temperature": 0.5, "max_tokens": 10},
)
# Another value for each field of the request: each must change the key.
OTHER_VALUES: dict[str, Any] = {
    "messages": (Message(role="user", content="Hi!"),),
    "model": "m2",
    "system": "Be long.",
    "params": {"temperature": 0.6, "max_tokens": 10},
    "tools": (Tool(name="lookup", parameters={"type": "object"}),),
    "tool_choice": "none",
    "reasoning": ReasoningConfig(effort="high"),
}
ENTRY: list[tuple[float, ProviderEvent]] = [
    (0.0, ReasoningDelta("Think", signature="sig")),
    (0.0, ToolCallStart("c1", "lookup", 0)),
    (0.0, ToolCallDelta("c1", '{"q": 1}')),
    (0.0, ToolCallEnd("c1", "lookup", {"q": 1}, '{"q": 1}')),
    (0.0, Source(url="https://example.com", title="Example")),
    (0.0, TextDelta("Hel")),
    (0.01, TextDelta("lo")),
    (0.02, Metadata({"x": 1})),
    (0.03, Usage(3, 2, cached_input_tokens=1, reasoning_tokens=1)),
    (0.03, Finish("stop", "m1")),
]


def test_every_field_of_the_request_is_part_of_the_key() -> None:
    key = cache_key("p", "m1", REQUEST)
    assert key == cache_key("p", "m1", dataclasses.replace(REQUEST))  # stable
    assert key != cache_key("q", "m1", REQUEST)
    for field in dataclasses.fields(ProviderRequest):
        other = dataclasses.replace(REQUEST, **{field.name: OTHER_VALUES[field.name]})
        if getattr(other, field.name) != getattr(REQUEST, field.name):
            assert cache_key("p", "m1", other) != key, field.name
    reordered = dataclasses.replace(REQUEST, params={"max_tokens": 10, "temperature": 0.5})
    assert cache_key("p", "m1", reordered) == key  # the order of params keys does not matter


def test_an_entry_survives_its_encoding() -> None:
    assert decode_entry(encode_entry(ENTRY)) == ENTRY
    with pytest.raises(ValueError):
        decode_entry(b'[[0, "Nope", {}]]')


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_least_recently_used_goes_first_by_count() -> None:
    cache = MemoryCache(max_entries=2, max_bytes=10**6, ttl_s=60)
    cache.put("a", ENTRY)
    cache.put("b", ENTRY)
    assert await cache.get("a") is not None  # a is now the most recently used
    cache.put("c", ENTRY)
    assert await cache.get("b") is None
    assert await cache.get("a") is not None and await cache.get("c") is not None
    stats = cache.stats
    assert (stats.entries, stats.evictions, stats.hits, stats.misses) == (2, 1, 3, 1)
    assert stats.bytes == 2 * len(encode_entry(ENTRY))


async def test_bytes_bound_and_ttl() -> None:
    size = len(encode_entry(ENTRY))
    clock = Clock()
    cache = MemoryCache(max_entries=100, max_bytes=2 * size + 1, ttl_s=10, clock=clock)
    for key in "abc":
        cache.put(key, ENTRY)
    assert cache.stats.entries == 2 and cache.stats.bytes == 2 * size
    assert await cache.get("a") is None
    clock.now = 10.0
    assert await cache.get("b") is None  # expired
    assert cache.stats.entries == 1
    small = MemoryCache(max_entries=100, max_bytes=size - 1, ttl_s=10)
    small.put("a", ENTRY)  # larger than the whole cache: not stored
    assert small.stats.entries == 0 and await small.get("a") is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"cache": {"type": "disk"}}, "cache.type: must be none, memory or redis"),
        ({"cache": {"type": "memory", "replay": "slow"}}, "cache.replay: must be fast or paced"),
        ({"cache": {"type": "memory", "max_entries": 0}}, "cache.max_entries: must be at least 1"),
        ({"cache": {"type": "memory", "ttl_s": 0}}, "cache.ttl_s: must be above 0"),
        (
            {"providers": {"default": "s", "s": {"type": "sim", "cache": True}}},
            "providers.s.cache: needs a cache (cache.type memory or redis)",
        ),
        (
            {"providers": {"default": "s", "s": {"type": "sim", "failover": "yes"}}},
            "providers.s.failover: must be off or continue",
        ),
    ],
)
def test_config_mistakes_name_the_key(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config_from_mapping(section, environ={})
    assert str(raised.value) == message
