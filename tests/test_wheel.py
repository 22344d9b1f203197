"""The package as users get it: a built wheel, installed with the project's pins in a fresh
venv, running ``stream-harness demo`` from a directory outside the checkout, so nothing can
resolve from the repository.

Needs the package index (hatchling to build; the pinned dependencies to install).  Measured:
about 2 s to build, 20 s to install, 20 s of demo."""

from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DATA = ("examples", "loadtests", "schemas")
REPORT_FILES = {"summary.json", "junit.xml", "summary.md", "report.html"}

pytestmark = pytest.mark.timeout(600)


def _env() -> dict[str, str]:
    """This environment without what would point Python or pip at the checkout's venv."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def _run(args: list[str], *, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(ROOT), "-w", str(out)]
    r = _run(pip, cwd=out, timeout=300)
    assert r.returncode == 0, f"pip wheel failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    print(f"wheel built in {time.monotonic() - started:.1f} s")
    (built,) = out.glob("stream_harness-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed under the project's pins (constraints.txt)."""
    home = tmp_path_factory.mktemp("fresh") / "venv"
    started = time.monotonic()
    r = _run([sys.executable, "-m", "venv", str(home)], cwd=home.parent, timeout=120)
    assert r.returncode == 0, r.stderr
    python = str(home / "bin" / "python")
    constraints = str(ROOT / "constraints.txt")
    install = [python, "-m", "pip", "install", "--quiet", "-c", constraints, str(wheel)]
    r = _run(install, cwd=home.parent, timeout=480)
    assert r.returncode == 0, f"pip install failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    print(f"fresh venv installed in {time.monotonic() - started:.1f} s")
    return home


# -- what the wheel holds ------------------------------------------------------------------------


def test_wheel_when_built_then_it_holds_every_module_and_the_shipped_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {
        p.relative_to(ROOT).as_posix()
        for package in ("harness", "suites")
        for p in (ROOT / package).rglob("*.py")
        if "_data" not in p.parts
    }
    assert modules <= names, sorted(modules - names)
    # demo and load: the examples and the locustfiles; every command: the schemas
    shipped = {
        f"harness/_data/{p.relative_to(ROOT).as_posix()}"
        for folder in DATA
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert shipped <= names, sorted(shipped - names)
    for needed in (
        "harness/_cli/tour.py",
        "harness/_cli/demo.py",
        "harness/_load/locustfile.py",
        "harness/_pytest_plugin.py",
        "suites/__init__.py",
        "suites/conftest.py",
        "harness/_data/examples/prefab_good.py",
        "harness/_data/examples/prefab_buggy.py",
        "harness/_data/examples/prefab-manifest.json",
        "harness/_data/loadtests/reconnect.py",
        "harness/_data/schemas/prefab-manifest.schema.json",
        "harness/_data/schemas/contracts/prefab.yaml",
    ):
        assert needed in names, needed
    assert not any(n.startswith(("tests/", "bench/", "examples/", "schemas/")) for n in names)


def test_wheel_when_built_then_it_declares_the_command_and_the_pytest_plugin(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        (path,) = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = z.read(path).decode()
    points = configparser.ConfigParser()
    points.read_string(text)
    assert points["console_scripts"]["stream-harness"] == "harness._cli.main:main"
    assert points["pytest11"]["stream_harness"] == "harness._pytest_plugin"


# -- installed in a fresh venv -------------------------------------------------------------------


def test_installed_wheel_when_imported_then_everything_resolves_inside_the_venv(
    venv: Path, tmp_path: Path
) -> None:
    code = (
        "import json, importlib.util, harness\n"
        "from importlib.metadata import entry_points\n"
        "from harness._core.resources import data_dir\n"
        "print(json.dumps({'harness': harness.__file__,"
        " 'suites': importlib.util.find_spec('suites').origin,"
        " 'data': [str(data_dir(n)) for n in ('examples', 'loadtests', 'schemas')],"
        " 'pytest11': {e.name: e.value for e in entry_points(group='pytest11')}}))"
    )
    r = _run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    for path in [found["harness"], found["suites"], *found["data"]]:
        assert path.startswith(str(venv)), path
    assert [Path(p).parent.name for p in found["data"]] == ["_data"] * 3
    assert found["pytest11"]["stream_harness"] == "harness._pytest_plugin"  # Locust adds its own


def test_installed_wheel_when_demo_runs_outside_the_checkout_then_it_succeeds(
    venv: Path, tmp_path: Path
) -> None:
    assert ROOT.resolve() not in tmp_path.resolve().parents
    started = time.monotonic()
    r = _run([str(venv / "bin" / "stream-harness"), "demo"], cwd=tmp_path, timeout=200)
    print(f"installed demo ran in {time.monotonic() - started:.1f} s")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    out = r.stdout
    assert re.search(r"✓ conforms: 5 events checked", out)
    assert re.search(r"✓ 3 of 3 functions conform", out)
    assert re.search(r"✓ \d+ bugs caught in 3 of 3 functions, as planted", out)
    assert re.search(r"caught bug: batch_process: ZeroDivisionError.*\(gen\.raised\)", out)
    assert re.search(r"✓ \d+ streams, 0 failed · \d+ resumed after 3 events", out)
    last = out.splitlines()[-1]
    assert re.fullmatch(r"report: reports/\d{8}-\d{6}-demo/index\.html", last), last
    directory = tmp_path / last.removeprefix("report: ").removesuffix("/index.html")
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["ok"] is True
    assert all(s["status"] == "expected" for s in summary["steps"])
    for step in ("check", "manifest-good", "manifest-buggy"):
        assert {p.name for p in (directory / step).iterdir()} >= REPORT_FILES, step
    assert (directory / "load" / "verdict.json").is_file()
    # the examples came from the wheel's data, not from a checkout
    shipped = str(venv / "lib")
    assert all(shipped in b["reproducer"] for b in summary["caught_bugs"]), summary["caught_bugs"]
    assert all("/_data/examples/" in b["reproducer"] for b in summary["caught_bugs"])
