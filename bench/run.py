"""Run every scenario against tokenmux and the reference servers; write the table.

    .venv/bin/python bench/run.py [--repeats 3] [--quick] [--out bench/results]

Each server runs alone, pinned to core 0 (taskset); this process (the load generator) pins
itself to core 1. Server CPU is read from /proc/<pid>/stat around each run, RSS from
/proc/<pid>/status, so every stack is measured the same way. Every figure is the median
of ``--repeats`` runs. Loopback only; every run is bounded by its own timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.bench.load import run_load  # noqa: E402
from server.bench.record import BenchResult, BenchSpec, Recorder  # noqa: E402

PY = sys.executable
SERVER_CORE, CLIENT_CORE = 0, 1
TICKS = os.sysconf("SC_CLK_TCK")
HOLD_S = 3.5  # memory runs sample RSS this long after every stream has its first chunk

BENCH_CONFIG = ROOT / "bench" / "bench.yaml"  # also what bench/RESULTS.md serves


@dataclass(frozen=True)
class Stack:
    name: str
    argv: Callable[[int, Path], list[str]]
    root: Path = ROOT  # the checkout the server runs from (cwd and PYTHONPATH)


def _tokenmux(loop: str) -> Callable[[int, Path], list[str]]:
    def argv(port: int, config: Path) -> list[str]:
        return [PY, "-m", "server", "serve", "--config", str(config), "--port", str(port),
                "--loop", loop]  # fmt: skip

    return argv


STACKS = {
    "tokenmux": Stack("tokenmux (asyncio)", _tokenmux("asyncio")),
    "tokenmux-uvloop": Stack("tokenmux (uvloop)", _tokenmux("uvloop")),
    "bare": Stack(
        "bare aiohttp", lambda port, _: [PY, str(ROOT / "bench/refs/bare_aiohttp.py"), str(port)]
    ),
    "naive": Stack(
        "naive aiohttp loop",
        lambda port, _: [PY, str(ROOT / "bench/refs/naive_aiohttp.py"), str(port)],
    ),
    "fastapi": Stack(
        "FastAPI + plain uvicorn",
        lambda port, _: [PY, str(ROOT / "bench/refs/fastapi_ref.py"), str(port)],
    ),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@contextmanager
def running(stack: Stack) -> Iterator[tuple[str, int]]:
    """Start ``stack`` pinned to the server core; yield (url, pid); stop it."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(stack.root), PYTHONASYNCIODEBUG="")
    env.pop("PYTHONASYNCIODEBUG")
    proc = subprocess.Popen(
        ["taskset", "-c", str(SERVER_CORE), *stack.argv(port, BENCH_CONFIG)],
        cwd=stack.root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):  # bounded: 20 s
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy")


def measure(spec: BenchSpec, pid: int) -> dict[str, Any]:
    """One load run; the result plus server CPU and RSS from /proc."""
    sampled: dict[str, int] = {}

    async def on_started() -> None:
        if spec.until == "started":
            # Memory runs: let every stream reach its steady state (a few chunks in, the
            # provider mid-reply) before sampling, not just its first chunk.
            await asyncio.sleep(HOLD_S)
        sampled["rss_started"] = rss_bytes(pid)

    async def go() -> BenchResult:
        rec = Recorder(expected=spec.streams)
        began = time.perf_counter()
        await run_load(spec, rec, on_started=on_started)
        return BenchResult.from_recorder(spec, rec, time.perf_counter() - began)

    rss_idle = rss_bytes(pid)
    cpu0 = cpu_seconds(pid)
    result = asyncio.run(go())
    cpu = cpu_seconds(pid) - cpu0
    out = result.as_dict()
    out.update(server_cpu_s=cpu, rss_idle=rss_idle, **sampled)
    out["cpu_per_1m_chunks"] = cpu / result.chunks * 1e6 if result.chunks else None
    if "rss_started" in sampled:
        out["rss_per_stream_kib"] = (sampled["rss_started"] - rss_idle) / spec.streams / 1024
    return out


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    spec: BenchSpec
    stacks: tuple[str, ...]
    warmup: BenchSpec | None = None


def scenarios(quick: bool) -> list[Scenario]:
    k = 10 if quick else 1
    ws = BenchSpec(url="", mode="ws", connections=10, sessions=100, chunks=200 // k)
    sse = BenchSpec(url="", mode="sse", sessions=50, chunks=2000 // k)
    tm = ("tokenmux", "tokenmux-uvloop", "before")
    return [
        Scenario("ws", "WS 10 sockets x 100 sessions x 200 chunks, unpaced", ws,
                 (*tm, "bare", "naive")),
        Scenario("ws_burst1", "same, simulator burst 1 (one token per loop turn)",
                 replace(ws, burst=1), (*tm, "bare")),
        Scenario("sse", "SSE 50 streams x 2000 chunks, unpaced", sse,
                 (*tm, "bare", "naive", "fastapi")),
        Scenario("sse_burst1", "same, simulator burst 1", replace(sse, burst=1),
                 (*tm, "bare", "fastapi")),
        Scenario("sse_many", "SSE 1000 streams x 50 chunks, unpaced",
                 replace(sse, sessions=1000 // k, chunks=50), (*tm, "bare", "fastapi")),
        Scenario("fair", "fairness: 1000 sessions at once on 10 sockets, 200 chunks unpaced",
                 ws, tm),
        Scenario("fair_paced", "fairness: 1000 sessions at once, 50 tokens/s, 50 chunks",
                 replace(ws, rate=50, chunks=50), tm),
        Scenario("cancel", "cancel: 1000 sessions at 20 tokens/s (1 s ramp), cancel after 20",
                 replace(ws, rate=20, chunks=100, ramp_s=1.0, cancel_after=20), (*tm, "bare")),
        Scenario("mem_ws", "memory: 2000 sessions on 20 sockets at 1 chunk/s",
                 replace(ws, connections=20, sessions=100, rate=1, chunks=30,
                         until="started"), (*tm, "bare")),
        Scenario("mem_sse", "memory: 1000 SSE streams at 1 chunk/s",
                 replace(sse, sessions=1000 // k, rate=1, chunks=30, until="started"),
                 (*tm, "bare", "fastapi")),
        Scenario("ttft", "added latency: 200 sequential SSE requests, zero-delay upstream",
                 replace(sse, sessions=1, chunks=2), (*tm, "bare")),
    ]  # fmt: skip


def run_scenario(sc: Scenario, stack: Stack, repeats: int) -> dict[str, Any]:
    """Median of ``repeats`` runs. Memory runs get a fresh, cold server each time (the
    allocator keeps what it once took); the others share one server after a warm-up."""
    runs: list[dict[str, Any]] = []
    if sc.key.startswith("mem"):
        for _ in range(repeats):
            with running(stack) as (url, pid):
                runs.append(measure(replace(sc.spec, url=url, timeout_s=120), pid))
    else:
        with running(stack) as (url, pid):
            spec = replace(sc.spec, url=url, timeout_s=120)
            warm = replace(spec, rate=0, chunks=10, ramp_s=0, cancel_after=0,
                           connections=min(spec.connections, 2),
                           sessions=min(spec.sessions, 100))  # fmt: skip
            asyncio.run(run_load(warm, Recorder(expected=warm.streams)))
            for _ in range(repeats):
                runs.append(sequential_ttft(spec) if sc.key == "ttft" else measure(spec, pid))
    return {"runs": runs, **{k: _median(runs, k) for k in _KEYS}}


_KEYS = (
    "cpu_per_1m_chunks", "ttfc_p50_ms", "ttfc_p99_ms", "stream_p99_ms", "cancel_p50_ms",
    "cancel_p99_ms", "rss_per_stream_kib", "events_per_s", "ttft_p50_ms", "ttft_p99_ms",
)  # fmt: skip


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def sequential_ttft(spec: BenchSpec) -> dict[str, Any]:
    """Time to first chunk of one request at a time (no queueing): per-request overhead."""
    values: list[float] = []
    for _ in range(200):
        rec = Recorder(expected=1)
        asyncio.run(run_load(spec, rec))
        values.extend(rec.ttfc)
    values.sort()
    return {"ttft_p50_ms": values[len(values) // 2] * 1000,
            "ttft_p99_ms": values[int(len(values) * 0.99) - 1] * 1000}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--rounds", type=int, default=1, help="run every stack this many times, interleaved"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", help="comma-separated scenario keys")
    parser.add_argument("--stacks", help="comma-separated stack keys (default: all)")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite latest.md from latest.json"
    )
    parser.add_argument("--out", default=str(ROOT / "bench/results"))
    parser.add_argument(
        "--before",
        type=Path,
        help="another checkout of tokenmux (e.g. a git worktree of an older commit): adds "
        "the stack `before`, its server on asyncio, to every tokenmux scenario",
    )
    args = parser.parse_args()
    if args.before:
        STACKS["before"] = Stack(
            f"tokenmux before ({_commit(args.before)})", _tokenmux("asyncio"), args.before
        )
    chosen = scenarios(args.quick)
    if args.render:
        saved = json.loads((Path(args.out) / "latest.json").read_text())
        (Path(args.out) / "latest.md").write_text(render(saved["meta"], chosen, saved["results"]))
        return 0
    os.sched_setaffinity(0, {CLIENT_CORE})
    if args.only:
        chosen = [s for s in chosen if s.key in args.only.split(",")]
    results: dict[str, dict[str, Any]] = {}
    # Rounds interleave the stacks in time, so a noisy stretch of the shared machine lands
    # on every stack alike; each cell's figure is the median over every round's runs.
    for _ in range(args.rounds):
        for stack_key, stack in STACKS.items():
            if args.stacks and stack_key not in args.stacks.split(","):
                continue
            for sc in [s for s in chosen if stack_key in s.stacks]:
                print(f"{sc.key:11} {stack.name:24}", end=" ", flush=True)
                res = run_scenario(sc, stack, args.repeats)
                cell = results.setdefault(sc.key, {}).setdefault(stack_key, {"runs": []})
                cell["runs"] += res["runs"]
                cell.update({k: _median(cell["runs"], k) for k in _KEYS})
                print({k: round(v, 2) for k in _KEYS if (v := res.get(k)) is not None}, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "repeats": args.repeats * args.rounds,
        "stacks": {key: stack.name for key, stack in STACKS.items()},
        "quick": args.quick,
        "loadavg_end": os.getloadavg(),
    }
    (out / "latest.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    (out / "latest.md").write_text(render(meta, chosen, results))
    print(f"wrote {out / 'latest.md'}")
    return 0


def _commit(checkout: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.stdout.strip() or checkout.name


def render(meta: dict[str, Any], chosen: list[Scenario], results: dict[str, Any]) -> str:
    load = ", ".join(f"{x:.2f}" for x in meta["loadavg_end"])
    lines = [
        f"Run {meta['when']}, Python {meta['python']}, {meta['cpus']} cores, median of "
        f"{meta['repeats']}, load average at the end {load}.",
        "",
    ]
    cols = ["cpu_per_1m_chunks", "ttfc_p50_ms", "ttfc_p99_ms", "cancel_p99_ms",
            "rss_per_stream_kib", "ttft_p50_ms", "events_per_s"]  # fmt: skip
    heads = ["CPU s / 1M chunks", "TTFC p50 ms", "TTFC p99 ms", "cancel p99 ms",
             "RSS KiB / stream", "TTFT p50 ms", "events/s"]  # fmt: skip
    for sc in chosen:
        rows = results.get(sc.key, {})
        if not rows:
            continue
        # RSS per stream is only meaningful in the memory runs (sampled in steady state).
        shown = [c for c in cols if c != "rss_per_stream_kib" or sc.key.startswith("mem")]
        used = [
            i
            for i, c in enumerate(cols)
            if c in shown and any(r.get(c) is not None for r in rows.values())
        ]
        lines += [f"**{sc.title}** (`{sc.key}`)", ""]
        lines.append("| stack | " + " | ".join(heads[i] for i in used) + " |")
        lines.append("|---|" + "---|" * len(used))
        for key, res in rows.items():
            cells = [_fmt(res.get(cols[i])) for i in used]
            name = meta.get("stacks", {}).get(key) or STACKS[key].name
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 1000 else f"{value:.2f}"


if __name__ == "__main__":
    sys.exit(main())
