"""The protocol core stays sans-I/O, and every module imports on its own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parent.parent / "server"
MODULES = sorted(
    ".".join(path.relative_to(SERVER.parent).with_suffix("").parts)
    for path in SERVER.rglob("*.py")
    if path.name != "__main__.py"
)


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((SERVER / "protocol").glob("*.py")), ids=lambda p: p.name)
def test_protocol_core_does_no_io(path: Path) -> None:
    """protocol/ imports neither asyncio nor aiohttp nor any server layer above it."""
    for name in imported_modules(path):
        top = name.split(".")[0]
        assert top not in {"asyncio", "aiohttp", "socket"}, name
        if name.startswith("server."):
            assert name.startswith(("server.protocol", "server.errors")), name


def test_every_module_imports_alone() -> None:
    """No circular imports: each module imports first in a fresh interpreter."""
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    for module in MODULES:
        result = subprocess.run(
            [sys.executable, "-W", "error", "-c", script, module],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{module}: {result.stderr[-2000:]}"
