"""Run deploy/nginx.conf for real: a throwaway prefix, a free loopback port, no daemon.

The shipped file is used as is, except for the lines it marks as site-specific (paths,
listen, upstream), which are rewritten to point into a temporary prefix. The listening
socket is bound here and handed to nginx through its ``NGINX`` environment variable (the
mechanism nginx uses for binary upgrades): connections queue in its backlog from the
start, so no test has to wait for nginx to come up.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

__all__ = ["NGINX_APP_CONF", "NGINX_CONF", "find_nginx", "render_config", "run_nginx"]

NGINX_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
NGINX_APP_CONF = NGINX_CONF.with_name("nginx-app.conf")


def find_nginx() -> str | None:
    """The nginx binary (Debian puts it in /usr/sbin, which a user's PATH may lack)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def render_config(
    template: str, *, prefix: Path, listen: str, upstream: str, app: str | None = None
) -> str:
    """A shipped config with its site-specific lines pointed at ``prefix`` and ports
    (``app``: the address of the app next to tokenmux, for deploy/nginx-app.conf)."""
    temp_paths = "".join(
        f"\n    {kind}_temp_path {prefix}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    rules = [
        (r"^worker_processes .*$", "worker_processes 1;"),
        (r"^pid .*$", f"pid {prefix}/nginx.pid;"),
        (r"^error_log .*$", f"error_log {prefix}/error.log warn;"),
        (r"^    access_log .*$", f"    access_log {prefix}/access.log;{temp_paths}"),
        (r"^        listen 80;.*$", f"        listen {listen};"),
        (r"^        server 127\.0\.0\.1:8080;.*$", f"        server {upstream};"),
    ]
    if app is not None:
        rules.append((r"^        server 127\.0\.0\.1:8000;.*$", f"        server {app};"))
    for pattern, replacement in rules:
        template, count = re.subn(pattern, replacement, template, flags=re.M)
        if count != 1:
            raise ValueError(f"deploy/nginx.conf: expected one line matching {pattern!r}")
    return template


def _write_config(prefix: Path, listen: str, upstream: str, conf: Path, app: str | None) -> None:
    config = render_config(
        conf.read_text(), prefix=prefix, listen=listen, upstream=upstream, app=app
    )
    (prefix / "nginx.conf").write_text(config)
    os.chmod(prefix, 0o755)  # workers run as nobody when the master is root


@asynccontextmanager
async def run_nginx(
    nginx: str, prefix: Path, upstream: str, *, conf: Path = NGINX_CONF, app: str | None = None
) -> AsyncIterator[str]:
    """nginx (``conf``) in front of ``upstream`` (host:port) and, for a config with an app
    next to tokenmux, ``app``; yields its base URL; stops it after."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    await asyncio.to_thread(_write_config, prefix, f"127.0.0.1:{port}", upstream, conf, app)
    listener.set_inheritable(True)
    proc = await asyncio.create_subprocess_exec(
        nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log"),
        "-g", "daemon off;",
        env={**os.environ, "NGINX": f"{listener.fileno()};"},
        pass_fds=(listener.fileno(),),
    )  # fmt: skip
    listener.close()  # nginx holds its own copy
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
