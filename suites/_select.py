"""Which suite tests apply to the target given: the others are deselected, never skipped or
passed, and the terminal summary says, per suite, which option each one needs.

Each test declares what it needs with :func:`needs`; a test without a declaration always runs.
The targets the options describe:

    --stream-url URL                     one streaming endpoint, checked as given
    --stream-url URL --stream-manifest   a prefab gateway: each function at URL/invoke/{name}
    --stream-manifest alone              the manifest, checked on its own
    --stream-openapi SPEC                an OpenAPI document: one test per streaming operation
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

__all__ = ["Needs", "deselect", "needs", "summary_lines"]

F = TypeVar("F", bound=Callable[..., Any])

_ATTRIBUTE = "_stream_harness_needs"
_SUITES = Path(__file__).resolve().parent
_DESELECTED = pytest.StashKey[list[str]]()


@dataclass(frozen=True, slots=True)
class Needs:
    """The options a test needs (and what it does with them), and an option that makes it not
    apply (and why)."""

    options: tuple[str, ...]
    why: str = ""
    unless: tuple[str, str] | None = None

    def reason(self, config: pytest.Config) -> str | None:
        """Why the test does not apply to the options given; None when it does."""
        missing = [o for o in self.options if not config.getoption(o)]
        if missing:
            why = f" ({self.why})" if self.why else ""
            return f"needs {' and '.join(missing)}{why}"
        if self.unless is not None and config.getoption(self.unless[0]):
            return f"not with {self.unless[0]}: {self.unless[1]}"
        return None


def needs(*options: str, why: str = "", unless: tuple[str, str] | None = None) -> Callable[[F], F]:
    """Mark a suite test as applying only when ``options`` are given, and ``unless`` (an option,
    and why it rules the test out) is not."""

    def mark(test: F) -> F:
        setattr(test, _ATTRIBUTE, Needs(options, why, unless))
        return test

    return mark


def deselect(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the suite tests that do not apply (reported through ``pytest_deselected``) and
    keep one reason line per suite (or per test, when only some of a suite's are dropped)."""
    kept: list[pytest.Item] = []
    dropped: dict[str, dict[str, list[pytest.Item]]] = {}  # file -> reason -> items
    for item in items:
        declared = _declared(item)
        reason = None if declared is None else declared.reason(config)
        if reason is None:
            kept.append(item)
        else:
            dropped.setdefault(item.path.name, {}).setdefault(reason, []).append(item)
    if not dropped:
        return
    config.hook.pytest_deselected(
        items=[i for by in dropped.values() for g in by.values() for i in g]
    )
    items[:] = kept
    lines = config.stash.setdefault(_DESELECTED, [])
    selected_files = {item.path.name for item in kept if _declared(item) is not None}
    for name, by_reason in sorted(dropped.items()):
        if len(by_reason) == 1 and name not in selected_files:
            lines.append(f"{name} deselected: {next(iter(by_reason))}")
            continue
        for reason, group in by_reason.items():
            tests = sorted({_function_name(i) for i in group})
            lines.append(f"{name}::{', '.join(tests)} deselected: {reason}")
    if not selected_files:
        lines.append(
            "nothing to run: give --stream-url URL (one streaming endpoint; --stream-contract, "
            "--stream-method, --stream-body), --stream-url and --stream-manifest (a prefab "
            "gateway), or --stream-openapi SPEC (one test per streaming operation)"
        )


def summary_lines(config: pytest.Config) -> Sequence[str]:
    return config.stash.get(_DESELECTED, [])


def _declared(item: pytest.Item) -> Needs | None:
    if item.path.resolve().parent != _SUITES:
        return None  # not one of ours: another conftest's business
    found = getattr(getattr(item, "obj", None), _ATTRIBUTE, None)
    return found if isinstance(found, Needs) else None


def _function_name(item: pytest.Item) -> str:
    return getattr(item, "originalname", None) or item.name
