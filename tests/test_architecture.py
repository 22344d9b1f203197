"""ARCHITECTURE.md's arrows, enforced: one rule per package of ``harness/``.

Each package (a layer) says which of our packages it may import and which libraries it must
not: the rule covers every module in it, present and future, so there is no list of files to
keep up to date.  Function-level imports count too: they still run.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HARNESS = Path(__file__).parent.parent / "harness"

#: What an I/O-free layer must not import.
IO = frozenset({
    "socket", "ssl", "subprocess", "asyncio", "selectors", "multiprocessing", "threading",
    "httpx", "httpcore", "h11", "gevent", "geventhttpclient", "locust", "requests",
    "starlette", "uvicorn", "anyio", "hypothesis",
})  # fmt: skip
GEVENT = frozenset({"gevent", "geventhttpclient", "locust"})


@dataclass(frozen=True)
class Layer:
    may_import: frozenset[str]  # our packages, besides itself
    must_not_import: frozenset[str]  # libraries


LAYERS = {
    # stdlib, jsonschema/referencing: decoders, session, rules registry, options, thresholds
    "_core": Layer(frozenset(), IO | {"pydantic", "rich", "yaml"}),
    "_contracts": Layer(frozenset({"_core"}), IO | {"rich"}),
    # results in, files out: a writer never runs anything
    "_report": Layer(frozenset({"_core", "_contracts"}), IO),
    # I/O, processes and the clock; a runner returns results and never writes a report
    "_runners": Layer(frozenset({"_core", "_contracts"}), GEVENT | {"hypothesis", "rich"}),
    "_proptest": Layer(frozenset({"_core", "_contracts", "_runners"}), GEVENT | {"rich"}),
    "_gateway": Layer(frozenset({"_core", "_contracts", "_runners"}), GEVENT | {"hypothesis"}),
    "_load": Layer(frozenset({"_core", "_contracts", "_report"}), {"hypothesis", "rich"}),
    # the edge: argparse, exit codes, which writers run
    "_cli": Layer(
        frozenset({"_core", "_contracts", "_report", "_runners", "_proptest", "_gateway", "_load"}),
        GEVENT,
    ),
}
#: Modules at the top of ``harness/``: the lazy public API, compatibility names, the plugin.
TOP = {"__init__", "_rules", "_catalog", "_pytest_plugin"}


def imports(path: Path, package: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add(f"harness.{package}" if node.level else node.module or "")
    return found


def modules() -> list[tuple[str, Path]]:
    return sorted(
        (path.relative_to(HARNESS).parts[0], path)
        for path in HARNESS.glob("_*/**/*.py")
        if path.relative_to(HARNESS).parts[0] != "_data"
    )


def test_every_module_of_harness_is_in_a_layer_or_at_the_top() -> None:
    packages = {p.name for p in HARNESS.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(LAYERS), "a new package needs its rule in LAYERS"
    assert {p.stem for p in HARNESS.glob("*.py")} == TOP


@pytest.mark.parametrize(("package", "path"), modules(), ids=lambda v: str(v).split("harness/")[-1])
def test_module_imports_point_down_only(package: str, path: Path) -> None:
    layer = LAYERS[package]
    found = imports(path, package)
    ours = {n.split(".")[1] for n in found if n.startswith("harness.")} - {package}
    assert ours <= layer.may_import, f"{path.name} imports {sorted(ours - layer.may_import)}"
    libraries = {n.split(".")[0] for n in found} & layer.must_not_import
    assert not libraries, f"{package}/{path.name} must not import {sorted(libraries)}"


def test_layers_form_no_cycle() -> None:
    for name, layer in LAYERS.items():
        for lower in layer.may_import:
            assert name not in LAYERS[lower].may_import, (name, lower)


def _modules_imported(path: Path, package: str) -> set[str]:
    """The modules of ``package`` that ``path`` imports when it runs (``from x import module``
    counts; imports for type checkers only do not)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = f"harness.{package}" + (f".{node.module}" if node.level and node.module else "")
            base = base if node.level else node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    prefix = f"harness.{package}."
    return {n.removeprefix(prefix) for n in found if n.startswith(prefix)}


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_modules_of_a_package_import_each_other_one_way_only(package: str) -> None:
    """E.g. ``_report``: the model is data and builders; the writers import it, never the
    reverse.  ``_cli``: the commands import the shared flags (``flags.py``), never ``main``."""
    paths = {p.stem: p for p in (HARNESS / package).glob("*.py") if p.stem != "__init__"}
    graph = {
        name: _modules_imported(path, package) & set(paths) - {name} for name, path in paths.items()
    }

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph[start]
        )

    cycles = sorted(name for name in graph if reaches(name, name, {name}))
    assert not cycles, f"{package}: {cycles} import each other"


def test_rule_modules_list_is_every_module_that_defines_a_rule() -> None:
    from harness._contracts.catalog import RULE_MODULES

    defining = set()
    for _, path in modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            decorators = getattr(node, "decorator_list", [])
            if any(
                isinstance(d, ast.Call) and getattr(d.func, "id", "") == "rule" for d in decorators
            ):
                dotted = path.relative_to(HARNESS.parent).with_suffix("").as_posix()
                defining.add(dotted.replace("/", "."))
    assert defining == set(RULE_MODULES)


def test_no_module_of_harness_imports_locust_or_gevent_at_import_time() -> None:
    """Locust monkey-patches the standard library: only its own subprocess may import it."""
    for path in HARNESS.rglob("*.py"):
        if path.parent.name == "_load" and path.stem in {"user", "_client"}:
            continue  # these two run inside the locust process
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        names = {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in top if isinstance(n, ast.ImportFrom) and n.module}
        assert not {x for x in names if x.split(".")[0] in GEVENT}, path


def fresh_modules(code: str) -> list[str]:
    """The heavy modules a fresh interpreter has loaded after running ``code``."""
    heavy = sorted(IO | {"pydantic", "rich", "yaml"})
    probe = f"import sys; {code}; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout.split()


def test_import_of_the_decoder_loads_no_io_library() -> None:
    """``from harness import SSEDecoder`` is the core alone: no asyncio, no HTTP client."""
    assert fresh_modules("from harness import SSEDecoder") == []
    assert fresh_modules("import harness") == []


def test_public_names_resolve_lazily_to_their_modules() -> None:
    assert fresh_modules("from harness import check") != []  # the runner does load httpx
    assert "hypothesis" not in fresh_modules("from harness import assert_conforms")


def test_cli_start_up_imports_neither_gevent_nor_locust() -> None:
    """Every subcommand is registered at start-up: none may drag in gevent (or Locust's
    monkey-patching) or Hypothesis for `stream-harness check`; the catalog needs neither."""
    loaded = fresh_modules(
        "from harness._cli.main import _build_parser; _build_parser(); "
        "from harness._contracts.catalog import load_all; load_all()"
    )
    assert not {"gevent", "locust", "hypothesis"} & set(loaded), loaded
