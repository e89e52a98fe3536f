"""Benchmark: what the shared session store costs per chunk, and how fast it acts across nodes.

    .venv/bin/python scripts/bench_store.py                # both parts, 1M chunks per store
    .venv/bin/python scripts/bench_store.py --chunks 200000 --skip-cluster

Part 1 (in one process, no transport): ``--sessions`` detached sessions on the simulator
stream ``--chunks`` chunks in total as fast as they can, once with the memory store and once
with the redis store (a redis-server this script starts on a free loopback port). It prints
the tokenmux process's CPU seconds per 1M chunks, redis-server's own CPU per 1M chunks, and
Redis commands and round trips per chunk.

Part 2 (real processes): two tokenmux nodes on that Redis (``store.heartbeat_s`` set by
``--heartbeat``). ``--cuts`` sessions start on node A, lose their socket at a random seq
and resume on node B (text checked whole, no gap, no duplicate), timing each resume from
the ``resume`` message sent to B until B's client has the first missed event; then
``--cancels`` times a session resumed on B is cancelled on B, timing the cancel until B's
client has ``stream_end{cancelled}`` (the cancel travels to A, A stops the upstream, the
end comes back through the log); then ``--kills`` times a third node whose sessions B is
relaying is killed (SIGKILL), timing until each of B's clients has ``error{node_lost}``.
Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.config import ProvidersConfig, ResumeConfig, StoreConfig, config_from_mapping
from server.protocol.envelope import Message, Start
from server.providers.registry import build_registry
from server.sessions.manager import SessionManager
from server.sessions.outbox import DetachedSink
from server.sessions.store import build_store
from tests._client import WsClient, check_session
from tests._process import OutputLog, spawn_server
from tests.cluster.conftest import RedisServer

ROOT = Path(__file__).resolve().parent.parent
os.environ["PYTHONASYNCIODEBUG"] = ""  # tests.conftest, imported above, turns it on


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_store(
    kind: str, redis: RedisServer, sessions: int, chunks: int, rate: float
) -> dict[str, Any]:
    providers = config_from_mapping(
        {"providers": {"sim": {"type": "sim", "params": {"tokens_per_second": 0}}}}, environ={}
    ).providers
    assert isinstance(providers, ProvidersConfig)
    registry = build_registry(providers)
    resume = ResumeConfig(enabled=True, grace_s=30, buffer_events=256)
    store = build_store(
        StoreConfig(type=kind, url=redis.url), grace_s=resume.grace_s, buffer_events=256
    )
    manager = SessionManager(registry, resume=resume, store=store)
    await store.start(manager.on_control)
    scope = manager.open_scope(max_sessions=None)
    per_session = chunks // sessions
    assert redis.process is not None
    redis_cpu = cpu_of(redis.process.pid)
    began_cpu, began = time.process_time(), time.perf_counter()
    started = []
    for i in range(sessions):
        start = Start(
            session=f"b{i}",
            messages=(Message(role="user", content="x"),),
            params={"max_tokens": per_session - 1, "tokens_per_second": rate, "ttft_ms": 0},
            on_disconnect="detach",  # resumable: only such sessions are logged
        )
        started.append(scope.start(start, DetachedSink()))
    for session in started:
        await scope.wait(session)
    await store.aclose()  # the final flush counts
    cpu, wall = time.process_time() - began_cpu, time.perf_counter() - began
    redis_cpu = cpu_of(redis.process.pid) - redis_cpu
    produced = sum(s.stream.chunks for s in started)
    health = store.health()
    await manager.shutdown()
    await registry.aclose()
    row = {
        "store": kind,
        "sessions": sessions,
        "tokens_per_second": rate or "unpaced",
        "chunks": produced,
        "cpu_s_per_1M_chunks": round(cpu / produced * 1e6, 2),
        "redis_server_cpu_s_per_1M_chunks": round(redis_cpu / produced * 1e6, 2),
        "wall_s": round(wall, 2),
    }
    if kind == "redis":
        row["redis_ops_per_chunk"] = round(health["ops"] / produced, 4)
        row["round_trips_per_chunk"] = round(health["round_trips"] / produced, 5)
        row["events_per_batch"] = round(health["events_logged"] / max(1, health["batches"]), 1)
    return row


async def launch_node(
    redis: RedisServer, tmp: Path, name: str, heartbeat_s: float
) -> tuple[Any, OutputLog, str]:
    config = {
        "server": {"host": "127.0.0.1", "drain_s": 0, "shutdown_timeout_s": 3},
        "store": {"type": "redis", "url": redis.url, "heartbeat_s": heartbeat_s},
        "providers": {"sim": {"type": "sim", "params": {"tokens_per_second": 0}}},
    }
    path = tmp / f"{name}.yaml"
    path.write_text(json.dumps(config))
    process, output, url = await spawn_server(path)
    return process, output, url


async def resumed_on_b(a: str, b: str, sid: str, cut: int, params: dict[str, Any]) -> Any:
    """Start on ``a``, lose the socket after seq ``cut``, resume on ``b``: the events seen
    on ``a``, B's client, and the ms from sending ``resume`` to B's first event."""
    first = await WsClient.connect(a)
    await first.receive()
    await first.start(sid, f"prompt {sid}", params=params, on_disconnect="detach")
    await first.receive_until(lambda e: e.get("session") == sid and e["seq"] >= cut)
    first.ws.transport.abort()
    token = first.events[sid][0]["data"]["resume_token"]
    second = await WsClient.connect(b)
    await second.receive()
    resume = {"resume_token": token, "after_seq": cut}
    began = time.perf_counter()
    await second.send({"type": "resume", "session": sid, "data": resume})
    await second.receive_until(lambda e: e.get("session") == sid)
    took_ms = (time.perf_counter() - began) * 1000
    return first.events[sid][: cut + 1], second, took_ms


def spread(name: str, values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        f"{name}_median": round(statistics.median(values), 1),
        f"{name}_p95": round(values[max(0, round(len(values) * 0.95) - 1)], 1),
        f"{name}_max": round(values[-1], 1),
    }


async def node_lost_after_kill(
    redis: RedisServer, tmp: Path, b: str, round_: int, sessions: int, heartbeat_s: float
) -> list[float]:
    """A fresh node runs ``sessions`` hung sessions that B relays; kill it; the ms until
    each of B's clients has error{node_lost}."""
    process, output, victim = await launch_node(redis, tmp, f"victim{round_}", heartbeat_s)
    try:
        relays = []
        for i in range(sessions):
            sid = f"k{round_}-{i}"
            _, relay, _ = await resumed_on_b(victim, b, sid, 1, {"hang_at": 3})
            await relay.receive_until(lambda e, s=sid: e.get("session") == s and e["seq"] == 3)
            relays.append((sid, relay))
        killed = time.perf_counter()
        process.kill()
        await process.wait()

        async def lost(sid: str, relay: WsClient) -> float:
            event = await relay.receive_until(lambda e: e.get("session") == sid)
            assert event["type"] == "error" and event["data"]["code"] == "node_lost", event
            took = (time.perf_counter() - killed) * 1000
            await relay.close()
            return took

        return list(await asyncio.gather(*(lost(sid, relay) for sid, relay in relays)))
    finally:
        await output.aclose()


async def cluster(
    redis: RedisServer, cuts: int, cancels: int, kills: int, heartbeat_s: float
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        nodes = [await launch_node(redis, Path(tmp), n, heartbeat_s) for n in ("a", "b")]
        (_, _, a), (_, _, b) = nodes
        try:
            params = {"max_tokens": 120, "tokens_per_second": 400}
            rng = random.Random(3)
            complete = 0
            resumes = []
            for i in range(cuts):
                seen, second, took = await resumed_on_b(
                    a, b, f"r{i}", rng.randrange(0, 119), params
                )
                resumes.append(took)
                await second.until_ended({f"r{i}"})
                end = check_session(seen + second.events[f"r{i}"])
                complete += end["reason"] == "complete"
                await second.close()
            latencies = []
            for i in range(cancels):
                sid = f"c{i}"
                _, second, _ = await resumed_on_b(a, b, sid, 1, {"hang_at": 3})
                await second.receive_until(lambda e, s=sid: e.get("session") == s and e["seq"] == 3)
                began = time.perf_counter()
                await second.cancel(sid)
                end = await second.receive_until(lambda e: e["type"] == "stream_end")
                latencies.append((time.perf_counter() - began) * 1000)
                assert end["data"]["reason"] == "cancelled"
                await second.close()
            lost: list[float] = []
            for round_ in range(kills):
                lost += await node_lost_after_kill(redis, Path(tmp), b, round_, 4, heartbeat_s)
        finally:
            for process, output, _ in nodes:
                process.terminate()
                await process.wait()
                await output.aclose()
    return {
        "heartbeat_s": heartbeat_s,
        "cross_node_resumes": cuts,
        "complete_without_gap_or_duplicate": complete,
        **spread("resume_first_event_ms", resumes),
        **spread("cancel_ack_ms", latencies),
        **(spread("node_lost_after_kill_ms", lost) if lost else {}),
    }


async def main(args: argparse.Namespace) -> None:
    redis = RedisServer()
    await redis.start()
    try:
        for kind in ("memory", "redis") if not args.skip_store else ():
            row = await run_store(kind, redis, args.sessions, args.chunks, 0)
            print(json.dumps(row), flush=True)
        if args.paced_sessions and not args.skip_store:
            # Paced like real models: batches are small, so commands per chunk are higher.
            for kind in ("memory", "redis"):
                chunks = args.paced_sessions * args.paced_rate * 5  # about 5 s
                row = await run_store(kind, redis, args.paced_sessions, chunks, args.paced_rate)
                print(json.dumps(row), flush=True)
        if not args.skip_cluster:
            row = await cluster(redis, args.cuts, args.cancels, args.kills, args.heartbeat)
            print(json.dumps(row))
    finally:
        await redis.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--paced-sessions", type=int, default=500)
    parser.add_argument("--paced-rate", type=int, default=40, help="tokens/s per paced session")
    parser.add_argument("--cuts", type=int, default=50)
    parser.add_argument("--cancels", type=int, default=50)
    parser.add_argument("--kills", type=int, default=5, help="nodes killed, 4 sessions each")
    parser.add_argument("--heartbeat", type=float, default=0.5, help="store.heartbeat_s")
    parser.add_argument("--skip-store", action="store_true", help="part 2 only")
    parser.add_argument("--skip-cluster", action="store_true")
    asyncio.run(main(parser.parse_args()), debug=False)
