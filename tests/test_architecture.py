"""ARCHITECTURE.md's arrows, enforced: the core imports no I/O and nothing above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).parent.parent / "harness"

CORE = [
    "_sse", "_rules", "_session", "_contracts", "_contract_engine", "_contract_file",
    "_contract_fastpath", "_contract_order", "_contract_invariants", "_contract_pointer",
    "_contract_rules", "_prefab", "_schemas", "_thresholds",
]  # fmt: skip
LEAVES = {"_errors", "_options", "_redact", "_resources", "_urls"}
IO_LIBRARIES = {
    "socket", "subprocess", "asyncio", "selectors", "httpx", "httpcore", "gevent", "locust",
    "geventhttpclient", "requests", "starlette", "uvicorn", "multiprocessing", "threading",
}  # fmt: skip


def imports(module: str) -> set[str]:
    tree = ast.parse((HARNESS / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):  # function-level imports count too: they still run
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_io_library(module: str) -> None:
    bad = {name for name in imports(module) if name.split(".")[0] in IO_LIBRARIES}
    assert not bad, f"harness/{module}.py is core (sans-I/O) but imports {sorted(bad)}"


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_only_core_and_leaves(module: str) -> None:
    allowed = set(CORE) | LEAVES
    ours = {n.split(".")[1] for n in imports(module) if n.startswith("harness.")}
    assert ours <= allowed, f"harness/{module}.py imports {sorted(ours - allowed)} from above"


def test_no_module_of_harness_imports_locust_or_gevent_at_import_time() -> None:
    """Locust monkey-patches the standard library: only its own subprocess may import it."""
    for path in HARNESS.rglob("*.py"):
        if path.parent.name == "_load" and path.stem in {"user", "_client"}:
            continue  # these two run inside the locust process
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        names = {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in top if isinstance(n, ast.ImportFrom) and n.module}
        assert not {x for x in names if x.split(".")[0] in {"locust", "gevent"}}, path


def test_cli_start_up_imports_neither_gevent_nor_locust() -> None:
    """Every subcommand is registered at start-up: none may drag in gevent (or Locust's
    monkey-patching) for `stream-harness check`."""
    import subprocess
    import sys

    code = (
        "import sys; from harness._cli import _build_parser; _build_parser(); "
        "import harness._catalog; "
        "print(sorted(m for m in ('gevent', 'locust', 'hypothesis') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "['hypothesis']"  # the catalog's manifest rules need it
