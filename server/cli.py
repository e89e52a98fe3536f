"""Command line: ``tokenmux serve [--config PATH] [--host H] [--port P]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Sequence

from server.app import start_server
from server.config import Config, load_config
from server.errors import ConfigError

__all__ = ["main"]

logger = logging.getLogger("tokenmux")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokenmux", description="Stream LLM output to web clients."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument(
        "--config",
        default=os.environ.get("TOKENMUX_CONFIG", "config.yaml"),
        help="config file (default: $TOKENMUX_CONFIG or ./config.yaml)",
    )
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", type=int, help="listen port (overrides server.port; 0 picks one)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"tokenmux: {exc}", file=sys.stderr)
        return 2
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    config = dataclasses.replace(config, server=dataclasses.replace(config.server, **overrides))
    logging.basicConfig(
        level=config.server.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve(config))
    return 0


async def serve(config: Config) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    running = await start_server(config)
    logger.info(
        "tokenmux listening on %s (providers: %s)", running.url, ", ".join(config.providers.entries)
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
