"""The escape hatch: invariants contributed by a package's ``stream_harness.rules`` entry point.

A tiny fake distribution (a ``.dist-info`` with ``entry_points.txt``, and its module) is put on
``sys.path``, so ``importlib.metadata`` finds it exactly as it finds an installed package.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from contract_fixtures import check_events

from harness._contracts.invariants import ENTRY_POINT_GROUP
from harness._contracts.registry import load_contract
from harness._core.errors import UsageError
from harness._core.rules import CATALOG

PLUGIN = '''
from harness._core.rules import Severity, rule, violation


@rule("acme.no-shouting", Severity.WARNING, "A text field is written in capitals.")
def no_shouting(text: str) -> str | None:
    """Capitals read as shouting in a chat window; the acme style guide asks for sentence
    case.  Lower-case the text before sending it, or keep capitals for acronyms only."""
    if len(text) > 3 and text.isupper():
        return f"{text!r} is all capitals"
    return None


class NoShouting:
    types = ["content"]

    def __init__(self, params):
        self.field = params.get("field", "data")
        if not isinstance(self.field, str):
            raise ValueError("field must be a key name")
        self.seen = 0

    def feed(self, kind, event, index):
        self.seen += 1
        message = no_shouting(str(event.get(self.field, "")))
        return [] if message is None else [violation("acme.no-shouting", message, index)]

    def finish(self):
        return []


class Broken:
    def __init__(self, params):
        pass

    def feed(self, kind, event, index):
        raise RuntimeError("oops")


class NoFeed:
    def __init__(self, params):
        pass
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    (tmp_path / "acme_rules.py").write_text(PLUGIN, encoding="utf-8")
    info = tmp_path / "acme_rules-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-rules\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(f"""\
            [{ENTRY_POINT_GROUP}]
            acme.no-shouting = acme_rules:NoShouting
            acme.broken = acme_rules:Broken
            acme.no-feed = acme_rules:NoFeed
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    # The catalog is global: leave it as other tests (the docs page) expect it.
    CATALOG.pop("acme.no-shouting", None)
    sys.modules.pop("acme_rules", None)


def contract(tmp_path: Path, **invariant: Any) -> str:
    prefab = yaml.safe_load(
        (Path(__file__).parent.parent / "schemas" / "contracts" / "prefab.yaml").read_text()
    )
    for entry in prefab["types"].values():  # the copy lives elsewhere: refer by $id
        ref = entry["schema"]["$ref"].replace("../", "https://stream-harness.example/schemas/")
        entry["schema"]["$ref"] = ref
    prefab["name"] = "prefab-acme"
    prefab["invariants"].append(invariant)
    path = tmp_path / "acme.yaml"
    path.write_text(yaml.safe_dump(prefab), encoding="utf-8")
    return str(path)


STREAM = [
    {"type": "start"},
    {"type": "content", "data": "Hello"},
    {"type": "content", "data": "WORLD"},
    {"type": "done"},
]


def test_entry_point_invariant_when_named_then_its_rule_runs_on_its_types(
    plugin: None, tmp_path: Path
) -> None:
    path = contract(tmp_path, invariant="acme.no-shouting")
    assert check_events(path, STREAM) == [("acme.no-shouting", 2)]
    assert CATALOG["acme.no-shouting"].severity.value == "warning"


def test_entry_point_invariant_when_params_given_then_passed_through(
    plugin: None, tmp_path: Path
) -> None:
    path = contract(tmp_path, invariant="acme.no-shouting", field="note", types=["content"])
    stream = [STREAM[0], {"type": "content", "data": "SHOUT"}, STREAM[3]]
    assert check_events(path, stream) == []  # it reads "note", which is absent


def test_entry_point_invariant_when_params_rejected_then_usage_error_with_pointer(
    plugin: None, tmp_path: Path
) -> None:
    path = contract(tmp_path, invariant="acme.no-shouting", field=5)
    with pytest.raises(UsageError) as info:
        load_contract(path)
    assert "acme.yaml: /invariants/2: the acme.no-shouting invariant" in str(info.value)
    assert "ValueError: field must be a key name" in str(info.value)


def test_entry_point_invariant_when_it_has_no_feed_then_usage_error(
    plugin: None, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="has no feed"):
        load_contract(contract(tmp_path, invariant="acme.no-feed"))


def test_entry_point_invariant_when_it_raises_then_usage_error_naming_the_event(
    plugin: None, tmp_path: Path
) -> None:
    path = contract(tmp_path, invariant="acme.broken", types=["done"])
    with pytest.raises(UsageError, match=r"acme.broken invariant failed at event 3: RuntimeError"):
        check_events(path, STREAM)


def test_invariant_when_name_unknown_then_lists_built_ins(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        load_contract(contract(tmp_path, invariant="acme.missing"))
    message = str(info.value)
    assert '/invariants/2/invariant: unknown invariant "acme.missing"' in message
    built_ins = "constant, error-code, fragments, matches-request, once-per-key, progress, "
    assert built_ins + "requested, sequential, spans, sum" in message
    assert json.dumps(ENTRY_POINT_GROUP) in message
