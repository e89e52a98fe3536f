"""What a content-cache hit costs the server, next to a miss and to no cache at all.

    .venv/bin/python bench/cache.py [--rounds 5] [--sessions 200] [--tokens 200] [--redis]

One tokenmux process (pinned to core 0, as bench/run.py runs it, with bench/bench.yaml plus
``cache: {type: memory}``, or ``redis`` on a throwaway redis-server with ``--redis``)
streams the simulator's answers to one WebSocket client (core 1). Per round, three kinds
of ``--sessions`` sessions of ``--tokens`` tokens, all at once on one socket:
``uncached`` (new prompts, no cache), ``miss`` (new prompts with ``params.cache: true``:
streamed, recorded and stored) and ``hit`` (the miss prompts again: replayed from the
cache). Server CPU is read from /proc around each run: the figure is server CPU
microseconds per session, the median over rounds. Latency is start to ``stream_end`` of
one session at a time (median of 50), what one client waits for a whole answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import BENCH_CONFIG, CLIENT_CORE, PY, Stack, cpu_seconds, free_port, running  # noqa: E402


async def run(url: str, prompts: list[str], params: dict[str, Any]) -> int:
    """Stream one session per prompt, all at once on one socket, to their ends; the
    events received (fewer when a lagging socket had text merged)."""
    events = 0
    async with aiohttp.ClientSession() as http, http.ws_connect(url + "/ws") as ws:
        for n, prompt in enumerate(prompts):
            data = {"prompt": prompt, "params": params}
            await ws.send_str(json.dumps({"type": "start", "session": f"s{n}", "data": data}))
        ended = 0
        async for message in ws:
            events += 1
            if json.loads(message.data)["type"] == "stream_end":
                ended += 1
                if ended == len(prompts):
                    break
    return events


async def latency_ms(url: str, prompts: list[str], params: dict[str, Any]) -> float:
    """Median start-to-stream_end of one session at a time."""
    times = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url + "/ws") as ws:
        for n, prompt in enumerate(prompts):
            data = {"prompt": prompt, "params": params}
            began = time.perf_counter()
            await ws.send_str(json.dumps({"type": "start", "session": f"l{n}", "data": data}))
            async for message in ws:
                if json.loads(message.data)["type"] == "stream_end":
                    break
            times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def _wait_for_port(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"redis-server did not listen on {port}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--redis", action="store_true", help="cache.type redis (redis-server)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {CLIENT_CORE})
    config = yaml.safe_load(BENCH_CONFIG.read_text())
    config["limits"]["max_sessions_per_connection"] = max(args.sessions, 100)  # all at once
    redis = None
    if args.redis:
        port = free_port()
        redis = subprocess.Popen(
            [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port),
             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_for_port(port)
        config["cache"] = {"type": "redis", "url": f"redis://127.0.0.1:{port}/0"}
    else:
        config["cache"] = {"type": "memory"}
    config["cache"]["max_entries"] = 100_000
    config["cache"]["max_bytes"] = 1 << 30
    tokens = {"max_tokens": args.tokens}
    cpu: dict[str, list[float]] = {"uncached": [], "miss": [], "hit": []}
    events: dict[str, list[int]] = {kind: [] for kind in cpu}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cache.yaml"
        path.write_text(yaml.safe_dump(config))
        stack = Stack("tokenmux", lambda port, _: [PY, "-m", "server", "serve", "--config",
                                                   str(path), "--port", str(port)])  # fmt: skip
        try:
            with running(stack) as (url, pid):
                asyncio.run(run(url, [f"warm {n}" for n in range(10)], tokens))
                for r in range(args.rounds):
                    fresh = [f"round {r} prompt {n}" for n in range(args.sessions)]
                    cached = [f"cached {r} prompt {n}" for n in range(args.sessions)]
                    for kind, prompts, params in (
                        ("uncached", fresh, tokens),
                        ("miss", cached, {**tokens, "cache": True}),
                        ("hit", cached, {**tokens, "cache": True}),
                    ):
                        before = cpu_seconds(pid)
                        events[kind].append(asyncio.run(run(url, prompts, params)))
                        cpu[kind].append((cpu_seconds(pid) - before) * 1e6 / args.sessions)
                one_by_one = [f"latency {n}" for n in range(50)]
                waits = {
                    "uncached": asyncio.run(latency_ms(url, one_by_one, tokens)),
                    "miss": asyncio.run(latency_ms(url, one_by_one, {**tokens, "cache": True})),
                    "hit": asyncio.run(latency_ms(url, one_by_one, {**tokens, "cache": True})),
                }
        finally:
            if redis is not None:
                redis.terminate()
                redis.wait()
    base = statistics.median(cpu["uncached"])
    print(f"cache.type {config['cache']['type']}: {args.sessions} sessions x {args.tokens} "
          f"tokens at once on one WebSocket, median of {args.rounds} rounds")  # fmt: skip
    for kind, runs in cpu.items():
        median = statistics.median(runs)
        per = statistics.median(events[kind]) / args.sessions
        print(
            f"  {kind:<9} {median:6.0f} us server CPU/session ({median / base:4.2f}x uncached,"
            f" {per:5.1f} events/session) {waits[kind]:5.2f} ms start->stream_end alone"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
