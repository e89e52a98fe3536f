"""The protocol core stays sans-I/O, every module imports on its own, and no import loop
forms between server modules."""

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
CLIENT = SERVER.parent / "tokenmux"
CLIENT_MODULES = sorted(
    ".".join(path.relative_to(CLIENT.parent).with_suffix("").parts) for path in CLIENT.rglob("*.py")
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


@pytest.mark.parametrize(
    "path", sorted((SERVER / "sessions").rglob("*.py")), ids=lambda p: str(p.relative_to(SERVER))
)
def test_sessions_never_reach_up_into_the_transports(path: Path) -> None:
    """protocol -> sessions -> transports: sessions/ imports no transport, no app state, no
    aiohttp (only the transports speak aiohttp)."""
    for name in imported_modules(path):
        assert name.split(".")[0] != "aiohttp", name
        assert not name.startswith(("server.transports", "server.state", "server.app")), name


def test_every_module_imports_alone() -> None:
    """No circular imports: each module imports first in a fresh interpreter."""
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    for module in [*MODULES, *CLIENT_MODULES]:
        result = subprocess.run(
            [sys.executable, "-W", "error", "-c", script, module],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{module}: {result.stderr[-2000:]}"


def server_imports(module: str) -> set[str]:
    """The server modules ``module`` imports anywhere in its source (not only at the top)."""
    path = SERVER.parent.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            # `from server.x import y` imports server.x, or the module server.x.y itself.
            found.update(
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in PACKAGES_AND_MODULES
                else node.module
                for alias in node.names
            )
    return {name for name in found if name in PACKAGES_AND_MODULES and name != module}


PACKAGES_AND_MODULES = {name.removesuffix(".__init__") for name in MODULES}


def import_loops(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                loops.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return loops


def test_the_loop_finder_finds_a_loop() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_loops(graph) == [{"a", "b", "c"}]
    assert import_loops({"a": {"b"}, "b": set()}) == []


def test_no_import_loops_between_server_modules() -> None:
    """No server module imports itself round about (TYPE_CHECKING imports included)."""
    graph = {module: server_imports(module) for module in PACKAGES_AND_MODULES}
    assert import_loops(graph) == []


def test_the_client_package_never_imports_the_server() -> None:
    """tokenmux/ stands alone: users install it beside their own `server` packages."""
    for path in CLIENT.rglob("*.py"):
        assert not {n for n in imported_modules(path) if n.split(".")[0] == "server"}, path
    script = (
        "import sys, tokenmux, tokenmux.sync, tokenmux.chat\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'server'], sorted(sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
