"""Which providers the shipped config serves, with and without keys; config mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from server.cache.provider import CachedProvider
from server.config import config_from_mapping, load_config
from server.errors import ConfigError
from server.providers.registry import build_registry
from server.providers.resilience import ResilientProvider

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"OPENAI_API_KEY": "k1", "ANTHROPIC_API_KEY": "k2", "GEMINI_API_KEY": "k3"}


def chain(provider: object) -> list[str]:
    assert isinstance(provider, CachedProvider) and isinstance(provider.inner, ResilientProvider)
    return provider.inner.chain


def test_shipped_config_without_keys_serves_only_the_simulator() -> None:
    registry = build_registry(load_config(ROOT / "config.yaml", environ={}).providers)
    assert registry.names == ["sim"] and registry.default == "sim"


def test_shipped_config_with_keys_serves_the_real_providers() -> None:
    registry = build_registry(load_config(ROOT / "config.yaml", environ=KEYS).providers)
    assert registry.names == ["sim", "openai", "anthropic", "gemini"]
    assert chain(registry.get("anthropic")) == ["anthropic", "openai"]


def test_a_keyless_fallback_is_left_out_of_the_chain() -> None:
    environ = {"ANTHROPIC_API_KEY": "k2"}
    registry = build_registry(load_config(ROOT / "config.yaml", environ=environ).providers)
    assert registry.names == ["sim", "anthropic"]
    assert chain(registry.get("anthropic")) == ["anthropic"]


OPENAI = {"type": "openai", "model": "m", "api_key": "k"}


@pytest.mark.parametrize(
    ("providers", "key"),
    [
        ({"default": "o", "o": {**OPENAI, "api_key": ""}}, "providers.default"),
        ({"o": {**OPENAI, "fallbacks": ["nope"]}}, "providers.o.fallbacks"),
        ({"o": {**OPENAI, "fallbacks": ["o"]}}, "providers.o.fallbacks"),
        ({"o": {**OPENAI, "max_attempts": 0}}, "providers.o.max_attempts"),
        ({"o": {**OPENAI, "stall_timeout_s": 0}}, "providers.o.stall_timeout_s"),
        ({"o": {**OPENAI, "model": None}}, "providers.o.model"),
        ({"o": {**OPENAI, "fallbacks": "sim"}}, "providers.o.fallbacks"),
        ({"o": {**OPENAI, "type": "palm"}}, "providers.o.type"),
    ],
)
def test_provider_mistakes_name_the_key(providers: dict[str, Any], key: str) -> None:
    raw = {"providers": {"default": "sim", "sim": {"type": "sim"}, **providers}}
    with pytest.raises(ConfigError) as caught:
        build_registry(config_from_mapping(raw, environ={}).providers)
    assert caught.value.message.startswith(key + ":"), caught.value.message
