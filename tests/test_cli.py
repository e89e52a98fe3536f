"""The console entry point, run as a real process: serve, stream, stop on a signal."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests._rawws import RawWebSocket

ROOT = Path(__file__).resolve().parent.parent


async def launch(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "serve",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONASYNCIODEBUG": ""},
    )
    assert process.stdout is not None
    async with asyncio.timeout(20):
        while True:
            line = (await process.stdout.readline()).decode()
            assert line, "server exited before listening"
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                return process, found.group(1)


async def test_serve_streams_on_the_simulator_and_stops_on_sigterm() -> None:
    """`python -m server serve` with the shipped config: one URL line, streams, exits 0."""
    process, url = await launch("--port", "0", "--config", str(ROOT / "config.yaml"))
    try:
        async with aiohttp.ClientSession() as http:
            body = {"prompt": "Hello", "llm_params": {"max_tokens": 3, "ttft_ms": 0}}
            async with http.post(url + "/api/stream", json=body) as response:
                raw = await response.read()
        assert raw.startswith(b"data: {") and raw.endswith(b"data: [DONE]\n\n")
        assert b'"total_content":"Hello ' in raw
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            code = await process.wait()
    assert code == 0


async def test_bad_config_is_a_clear_error_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    await asyncio.to_thread(config.write_text, "server:\n  prot: 1\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "serve",
        "--config",
        str(config),
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    assert process.returncode == 2
    assert b"server.prot: unknown key" in stderr


async def test_sigterm_with_a_client_that_never_reads_exits_within_the_bound(
    tmp_path: Path,
) -> None:
    """A stalled peer with floods of text cannot hold the process past its shutdown bound."""
    config = tmp_path / "config.yaml"
    await asyncio.to_thread(
        config.write_text,
        "server:\n  drain_s: 0.5\n  shutdown_timeout_s: 2\n"
        "providers:\n  sim:\n    type: sim\n    params: {tokens_per_second: 0}\n",
    )
    process, url = await launch("--port", "0", "--config", str(config))
    stalled = await RawWebSocket.connect(url)
    for i in range(5):
        message = {
            "type": "start",
            "session": f"f{i}",
            "data": {"prompt": "x" * 1000, "params": {"max_tokens": 1_000_000}},
        }
        await stalled.send_text(json.dumps(message))
    reader = await RawWebSocket.connect(url)
    await reader.send_text(
        json.dumps(
            {"type": "start", "session": "r", "data": {"prompt": "x", "params": {"hang_at": 1}}}
        )
    )
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    received = await asyncio.wait_for(reader.read_until_closed(), 10)
    code = await asyncio.wait_for(process.wait(), 10)
    assert code == 0
    assert time.monotonic() - began < 0.5 + 2 + 3
    assert b'"type":"goaway"' in received and b'"reason":"shutdown"' in received
    assert b"\x88\x02\x03\xe9" in received  # a close frame with code 1001
    stalled.abort()
    reader.abort()


async def run_serve(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> tuple[int, list[str]]:
    """``python -m server serve ARGS`` expected to exit: its code and its output lines."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "serve", *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONASYNCIODEBUG": "", **(env or {})},
    )  # fmt: skip
    try:
        async with asyncio.timeout(20):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, output.decode().splitlines()


@pytest.mark.parametrize(
    ("yaml_text", "line"),
    [
        (
            "providers:\n  sim:\n    type: simm\n",
            "providers.sim.type: unknown type 'simm'"
            " (known: anthropic, gemini, ollama, openai, openai_responses, sim)",
        ),
        (
            "providers:\n  sim:\n    type: sim\n    fallbacks: [nope]\n",
            "providers.sim.fallbacks: 'nope' is not another provider",
        ),
        (
            "providers:\n  sim:\n    type: sim\n    params: {tokens_per_second: fast}\n",
            "providers.sim.params.tokens_per_second: must be a number from 0 to 1e+06",
        ),
        (
            "providers:\n  sim:\n    type: sim\n    params: {max_tokens: 2.5}\n",
            "providers.sim.params.max_tokens: must be an integer from 1 to 1000000",
        ),
        (
            "server:\n  port: [8080\n",
            "{path}: not valid YAML (line 3, column 1):"
            " expected ',' or ']', but got '<stream end>'",
        ),
    ],
    ids=["unknown-type", "unknown-fallback", "params-type", "params-int", "invalid-yaml"],
)
async def test_every_config_mistake_is_one_line_and_exit_2(
    tmp_path: Path, yaml_text: str, line: str
) -> None:
    config = tmp_path / "config.yaml"
    await asyncio.to_thread(config.write_text, yaml_text)
    code, output = await run_serve("--config", str(config), "--port", "0")
    assert (code, output) == (2, ["tokenmux: " + line.format(path=config)])


async def test_a_provider_whose_sdk_is_missing_names_the_extra(tmp_path: Path) -> None:
    """`pip install tokenmux` (no providers extra), then OPENAI_API_KEY set, shipped config."""
    blocker = tmp_path / "blocker"
    await asyncio.to_thread(blocker.mkdir)
    await asyncio.to_thread(
        (blocker / "sitecustomize.py").write_text,
        "import sys\n\n"
        "class NotInstalled:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('openai', 'anthropic', 'google'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "        return None\n\n"
        "sys.meta_path.insert(0, NotInstalled())\n",
    )
    env = {"PYTHONPATH": str(blocker), "OPENAI_API_KEY": "sk-test-not-a-real-key"}
    code, output = await run_serve("--config", str(ROOT / "config.yaml"), "--port", "0", env=env)
    assert code == 2
    assert output[-1] == (
        "tokenmux: providers.openai: needs the providers extra: pip install 'tokenmux[providers]'"
    )
    assert not any("Traceback" in line for line in output)


async def test_a_port_in_use_is_one_line_naming_the_address(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    config = tmp_path / "config.yaml"
    await asyncio.to_thread(config.write_text, "providers:\n  sim: {type: sim}\n")
    try:
        code, output = await run_serve("--config", str(config), "--port", str(port))
    finally:
        taken.close()
    assert code == 2
    assert output == [f"tokenmux: cannot listen on 127.0.0.1:{port}: address already in use"]


async def test_no_config_file_starts_on_the_defaults_and_says_so(tmp_path: Path) -> None:
    """Every key is optional: outside the repository `tokenmux serve` serves the simulator."""
    env = {"TOKENMUX_CONFIG": "", "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "serve", "--port", "0",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONASYNCIODEBUG": "", **env},
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(20):
            while "listening on" not in (lines or [""])[-1]:
                line = (await process.stdout.readline()).decode()
                assert line, "server exited: " + "".join(lines)
                lines.append(line.rstrip())
        url = re.search(r"listening on (http://\S+)", lines[-1])
        assert url is not None and "(providers: sim," in lines[-1]
        async with aiohttp.ClientSession() as http, http.get(url.group(1) + "/healthz") as r:
            assert (await r.json())["providers"] == ["sim"]
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            await process.wait()
    notes = [line for line in lines[:-1] if "config" in line]
    assert len(notes) == 1 and "no config file config.yaml" in notes[0], lines
    assert notes[0].endswith("serving the defaults (the simulator)")
