"""The examples in harness/ docstrings run, so they stay true (``make test`` runs this file).

Only modules whose source holds a ``>>>`` example are imported: importing every module would
pull Locust (and its gevent monkey-patching) into the test process.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

HARNESS = Path(__file__).parent.parent / "harness"


def _modules_with_examples() -> list[str]:
    names = []
    for path in sorted(HARNESS.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(HARNESS.parent).with_suffix("").parts
            names.append(".".join(p for p in parts if p != "__init__"))
    return names


def test_doctests_when_harness_has_examples_then_some_are_found() -> None:
    assert len(_modules_with_examples()) >= 3


@pytest.mark.parametrize("name", _modules_with_examples())
def test_doctests_when_run_then_every_example_holds(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
