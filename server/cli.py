"""Command line: ``tokenmux serve [--config PATH] [--host H] [--port P]``, ``tokenmux bench``
and ``tokenmux chat`` (the terminal chat of the client package, imported only for it)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from server.app import start_server
from server.bench.main import add_bench_parser, run_bench
from server.config import Config, load_config
from server.errors import ConfigError
from server.logs import configure_logging
from server.state import MANAGER

__all__ = ["main"]

logger = logging.getLogger("tokenmux")

DEFAULT_CONFIG = "config.yaml"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokenmux", description="Stream LLM output to web clients."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument(
        "--config",
        help="config file (default: $TOKENMUX_CONFIG, else ./config.yaml when it exists)",
    )
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", type=int, help="listen port (overrides server.port; 0 picks one)")
    serve.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop (auto: uvloop when installed)",
    )
    serve.add_argument("--log-events", action="store_true", help="log every event written")
    add_bench_parser(commands)
    commands.add_parser("chat", help="chat in the terminal (tokenmux chat --help)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["chat"]:
        from tokenmux.chat import main as chat  # the client; the server never needs it

        return chat(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "bench":
        return run_bench(args)
    try:  # every start-up mistake is one line, the same as a bad key in the file
        config, note = read_config(args.config)
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        config = dataclasses.replace(config, server=dataclasses.replace(config.server, **overrides))
        configure_logging(config.server.log_level, events=args.log_events)
        if note:
            logger.info("%s", note)
        loop_factory = _loop_factory(args.loop)
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve(config))
    except ConfigError as exc:
        print(f"tokenmux: {exc}", file=sys.stderr)
        return 2
    return 0


def read_config(path: str | None) -> tuple[Config, str | None]:
    """The file named by ``--config`` or $TOKENMUX_CONFIG, else ./config.yaml if there is
    one, else the defaults (every key is optional); with a note to log in that last case."""
    named = path or os.environ.get("TOKENMUX_CONFIG")
    if named:
        return load_config(named), None
    if os.path.exists(DEFAULT_CONFIG):
        return load_config(DEFAULT_CONFIG), None
    return Config(), f"no config file {DEFAULT_CONFIG}: serving the defaults (the simulator)"


def _loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when asked, or when installed and not refused; None is asyncio's default."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise SystemExit("tokenmux: --loop uvloop needs the uvloop extra installed") from None
        return None
    return uvloop.new_event_loop


# Allocations of container objects between two young-generation collections (CPython's
# default is 700). Every streamed event is a dict: at the default, thousands of live
# sessions mean a collection every few hundred events and a full one every few seconds,
# each walking every live session (measured: 12-15 % of the CPU of streaming).
GC_THRESHOLD = 20_000


def collect_garbage_for_a_server() -> None:
    """After start-up: what is loaded now (modules, provider SDKs, config) lives as long as
    the process, so collections stop walking it (gc.freeze), and young collections run
    less often. Reference counting still frees every event at once; only cycles wait."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


async def serve(config: Config) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    running = await start_server(config)
    collect_garbage_for_a_server()
    logger.info(
        "tokenmux listening on %s (providers: %s, loop: %s)",
        running.url,
        ", ".join(running.app[MANAGER].providers.names),  # served: keyless entries are not
        type(loop).__module__.split(".")[0],
    )
    try:
        await stop.wait()
        logger.info("shutting down")
    finally:
        await running.aclose()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
    logger.info("stopped")
