"""Benchmark: what the Python client costs per event, and how long a resume takes.

    .venv/bin/python scripts/bench_pyclient.py
    .venv/bin/python scripts/bench_pyclient.py --sessions 20 --tokens 5000 --cuts 20

A tokenmux server runs as a child process on 127.0.0.1 (simulator, unpaced). Part 1: one
``tokenmux.Client`` starts ``--sessions`` sessions at once on one socket and reads every
event, for JSON and for MessagePack; it prints events/s and the client process's CPU
microseconds per event (decode, typed event, routing). Part 2: ``--cuts`` times, a session
read through a TCP relay loses its connection at a random seq; it prints the time from
the cut to the first replayed event (reconnect with backoff + resume + replay), and checks
each text whole against the same request over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests._proxy import TcpRelay  # noqa: E402
from tokenmux import Client, Event  # noqa: E402

CONFIG = """\
server: {host: 127.0.0.1, port: 0, log_level: WARNING}
rate_limits: {starts_per_s: 10000, start_burst: 10000}
limits: {max_sessions_per_connection: 1000}
providers:
  default: sim
  sim: {type: sim, model: sim-1, params: {tokens_per_second: 0, ttft_ms: 0}}
"""


async def spawn_server(config: Path) -> tuple[asyncio.subprocess.Process, str]:
    """The server as a child process on a free port, once it answers /healthz."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "serve", "--config", str(config), "--port", str(port),
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONASYNCIODEBUG": ""},
    )  # fmt: skip
    async with aiohttp.ClientSession() as http, asyncio.timeout(20):
        while True:
            try:
                async with http.get(url + "/healthz") as response:
                    if response.status == 200:
                        return process, url
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)


async def throughput(url: str, encoding: Any, sessions: int, tokens: int) -> None:
    async with Client(url, encoding=encoding) as client:
        cpu, wall = time.process_time(), time.perf_counter()  # from the starts: reads begin there
        started = await asyncio.gather(
            *(client.start(prompt=f"p{i}", params={"max_tokens": tokens}) for i in range(sessions))
        )
        counts = await asyncio.gather(*(_count(s) for s in started))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    events = sum(counts)
    print(
        f"{encoding:8} {sessions} sessions, {events} events: {events / wall:,.0f} events/s, "
        f"client CPU {cpu / events * 1e6:.1f} µs/event"
    )


async def _count(session: Any) -> int:
    return sum([1 async for _ in session])


async def resume_gaps(url: str, cuts: int, tokens: int) -> None:
    params = {"max_tokens": tokens, "tokens_per_second": 500}
    gaps = []
    rng = random.Random(1)
    relay = await TcpRelay(url).start()
    try:
        async with aiohttp.ClientSession() as http, Client(relay.url) as client:
            for i in range(cuts):
                cut = rng.randrange(1, tokens // 2)
                session = await client.start(prompt=f"cut {i}", params=params)
                cut_at = 0.0
                events: list[Event] = []
                async for event in session:
                    if event.seq == cut + 1:
                        gaps.append(time.perf_counter() - cut_at)
                    events.append(event)
                    if event.seq == cut:
                        cut_at = time.perf_counter()
                        relay.cut()
                assert [e.seq for e in events] == list(range(len(events)))
                body = {"prompt": f"cut {i}", "llm_params": params}
                async with http.post(url + "/api/completion", json=body) as response:
                    assert session.content == (await response.json())["content"], i
    finally:
        await relay.aclose()
    gaps_ms = sorted(g * 1000 for g in gaps)
    print(
        f"resume after a dropped connection ({cuts} cuts, texts whole): "
        f"median {statistics.median(gaps_ms):.0f} ms, max {gaps_ms[-1]:.0f} ms "
        "from the cut to the next event"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--cuts", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(CONFIG)
        process, url = await spawn_server(config)
        try:
            for encoding in ("json", "msgpack"):
                await throughput(url, encoding, args.sessions, args.tokens)
            await resume_gaps(url, args.cuts, 200)
        finally:
            process.terminate()
            await process.wait()


if __name__ == "__main__":
    asyncio.run(main())
