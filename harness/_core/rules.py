"""The rule catalog: every check the harness makes has one entry here, with a stable id.

A rule is one small named function, registered with the :func:`rule` decorator
of the :class:`Registry`, which records
the id, the severity, a one-line summary and -- from the function's docstring -- the longer
explanation.  Rule ids are public interface (users' CI jobs grep for them): never rename one.

The function's signature is the rule's own business (a sequence rule takes checker state, an
HTTP rule takes a status code); what every rule shares is that it returns a message when the
rule is broken and ``None`` when it holds, and that :func:`violation` turns an id and a message
into a :class:`Violation` with the catalog's severity.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypeVar

__all__ = ["CATALOG", "Registry", "Rule", "Severity", "Violation", "rule", "strict", "violation"]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: Severity
    summary: str
    explanation: str
    check: Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: which, how bad, at which event (``None``: the stream as a whole)."""

    rule: str
    severity: Severity
    message: str
    event_index: int | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "event_index": self.event_index,
            "message": self.message,
        }


def strict(v: Violation) -> Violation:
    """``v`` under ``--strict``: a warning fails like an error (its message says why)."""
    if v.severity is Severity.ERROR:
        return v
    return Violation(v.rule, Severity.ERROR, f"{v.message} (a warning; --strict)", v.event_index)


F = TypeVar("F", bound=Callable[..., Any])


class Registry(Mapping[str, Rule]):
    """Rules by id.  A module defines its rules with ``@registry.rule(...)``; whoever needs
    the complete catalog calls :func:`harness._contracts.catalog.load_all`, which imports every
    module that defines rules -- by name, in one list, not as a side effect of other imports."""

    def __init__(self) -> None:
        self._rules: dict[str, Rule] = {}

    def rule(self, rule_id: str, severity: Severity | str, summary: str) -> Callable[[F], F]:
        """Register the decorated function as the rule ``rule_id``; its docstring explains it."""

        def register(fn: F) -> F:
            if rule_id in self._rules:
                raise ValueError(f"rule {rule_id!r} registered twice")
            explanation = inspect.cleandoc(fn.__doc__ or "")
            if not explanation:
                raise ValueError(f"rule {rule_id!r} needs a docstring: it is the explanation")
            self._rules[rule_id] = Rule(rule_id, Severity(severity), summary, explanation, fn)
            return fn

        return register

    def violation(self, rule_id: str, message: str, event_index: int | None = None) -> Violation:
        """A violation of the registered rule ``rule_id`` (its severity comes from the rule)."""
        try:
            severity = self._rules[rule_id].severity
        except KeyError:
            raise KeyError(f"rule {rule_id!r} is not registered (import its module)") from None
        return Violation(rule_id, severity, message, event_index)

    def pop(self, rule_id: str, default: Rule | None = None) -> Rule | None:
        """Forget ``rule_id`` (a contract plugin unloaded); ``default`` when it is unknown."""
        return self._rules.pop(rule_id, default)

    def __getitem__(self, rule_id: str) -> Rule:
        return self._rules[rule_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)


#: The one registry every rule of stream-harness is in.
CATALOG: Final = Registry()
rule = CATALOG.rule
violation = CATALOG.violation
