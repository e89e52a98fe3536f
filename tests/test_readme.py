"""The README says what a new user meets: its commands, its routes, its providers."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from server.app import RunningServer
from server.config import load_config

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_the_tokenmux_command_is_named_where_make_installs_it() -> None:
    """`make run` installs into .venv, which is not on PATH: every command says so."""
    commands = re.findall(r"(\S*)tokenmux (?:serve|bench)\b", README)
    assert commands
    assert all(prefix.endswith(".venv/bin/") for prefix in commands), commands


async def test_the_healthz_fields_in_the_routes_table_are_the_real_ones(
    server: RunningServer,
) -> None:
    row = next(line for line in README.splitlines() if line.startswith("| `GET /healthz`"))
    documented = re.search(r"`\{([^}]*)\}`", row)
    assert documented is not None, row
    async with aiohttp.ClientSession() as http, http.get(server.url + "/healthz") as response:
        real = await response.json()
    assert [name.strip() for name in documented.group(1).split(",")] == list(real)


def test_a_provider_without_a_live_entry_in_config_yaml_says_to_uncomment_it() -> None:
    served = {
        entry.type for entry in load_config(ROOT / "config.yaml", {}).providers.entries.values()
    }
    section = README.split("## Providers", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]  # no header
    for row in rows:
        type_ = re.findall(r"`([a-z]+)`", row.split("|")[2])[0]
        if type_ not in served:
            assert "uncomment" in row, row
