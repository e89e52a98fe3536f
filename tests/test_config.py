"""config.yaml loads into the dataclasses; mistakes name the key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.config import Config, config_from_mapping, load_config
from server.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_config_loads_and_defaults_to_the_simulator() -> None:
    config = load_config(ROOT / "config.yaml", environ={})
    assert config.providers.default == "sim"
    assert config.providers.entries["sim"].type == "sim"
    assert config.server.host == "127.0.0.1" and config.server.port == 8080


def test_shipped_config_matches_the_defaults_except_documented_demo_pacing() -> None:
    """Every key of config.yaml mirrors a dataclass field with the same default value."""
    shipped = load_config(ROOT / "config.yaml", environ={})
    defaults = Config()
    sections = (
        "server", "limits", "websocket", "sse", "resume", "store", "cache", "auth", "rate_limits"
    )  # fmt: skip
    for section in sections:
        assert getattr(shipped, section) == getattr(defaults, section), section


def test_empty_config_is_all_defaults() -> None:
    assert config_from_mapping({}, environ={}) == Config()


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"server": {"prot": 1}}, "server.prot"),
        ({"server": {"port": "80"}}, "server.port"),
        ({"server": {"port": True}}, "server.port"),
        ({"limits": {"max_message_bytes": 1.5}}, "limits.max_message_bytes"),
        ({"limits": {"max_sessions_per_connection": 0}}, "limits.max_sessions_per_connection"),
        ({"colour": "blue"}, "colour"),
        ({"providers": {"default": "x", "sim": {"type": "sim"}}}, "providers.default"),
        ({"providers": {"sim": {"model": "m"}}}, "providers.sim.type"),
        ({"providers": {"sim": {"type": "sim", "tempo": 1}}}, "providers.sim.tempo"),
        ({"providers": {"sim": {"type": "sim", "params": []}}}, "providers.sim.params"),
        ({"sse": []}, "sse"),
        ({"store": {"type": "etcd"}}, "store.type"),
        ({"store": {"heartbeat_s": 0}}, "store.heartbeat_s"),
    ],
)
def test_mistakes_name_the_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(raw, environ={})
    assert caught.value.message.startswith(key + ":"), caught.value.message


def test_environment_variables_are_interpolated() -> None:
    raw = {
        "providers": {
            "default": "sim",
            "sim": {"type": "sim", "api_key": "${KEY}", "base_url": "${URL:-http://localhost}"},
        }
    }
    entry = config_from_mapping(raw, environ={"KEY": "secret"}).providers.entries["sim"]
    assert entry.api_key == "secret" and entry.base_url == "http://localhost"
    with pytest.raises(ConfigError, match=r"providers\.sim\.api_key: environment variable KEY"):
        config_from_mapping(raw, environ={})


def test_unreadable_or_invalid_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, environ={})


def test_every_key_in_config_yaml_is_documented_inline() -> None:
    """Each leaf key line of the shipped config carries a `#` comment (or its parent does)."""
    text = (ROOT / "config.yaml").read_text()
    yaml.safe_load(text)
    for line in text.splitlines():
        stripped = line.strip()
        if (
            stripped
            and not stripped.startswith("#")
            and ":" in stripped
            and not stripped.endswith(":")
        ):
            assert "#" in stripped, f"undocumented key: {stripped}"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tokens_per_second": "fast"}, "providers.sim.params.tokens_per_second: must be a number"),
        ({"temperature": 7}, "providers.sim.params.temperature: must be a number from 0 to 2"),
        ({"hang_at": "later"}, "providers.sim.params.hang_at: must be an integer"),
        ({"burst": 0.5}, "providers.sim.params.burst: must be an integer"),
    ],
)
def test_provider_params_are_checked_at_start_up(params: dict[str, object], message: str) -> None:
    """A default that every request would inherit fails start-up, not every request."""
    raw = {"providers": {"sim": {"type": "sim", "params": params}}}
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_mapping(raw, environ={})
