"""The prefab streaming contract: the built-in contract file ``schemas/contracts/prefab.yaml``.

A prefab streaming function yields ``{"type": ..., "data": ..., "error_code"?: ...}`` objects,
which the gateway sends as plain ``data:`` lines (the SSE ``event:`` name is not used).  The
event shapes are the JSON Schemas in ``schemas/prefab/``; the order is
``start (progress | content)* (done | error)``; progress counters and error codes are the
contract file's ``progress`` and ``error-code`` invariants.

Nothing here is special to the engine: prefab is one contract file among several, checked
by :class:`~harness._contracts.engine.ContractEngine` like the others.  This module keeps the
names code and tests already use: :class:`PrefabChecker`, the event types, the union schema,
and ``_validate_json`` -- the contract's compiled fast path, which
``tests/test_prefab_schema_agreement.py`` holds to the JSON Schemas.
"""

from __future__ import annotations

from typing import Any, Final

from harness._contracts.engine import NO_VIOLATIONS, ContractEngine
from harness._contracts.registry import builtin_contract

__all__ = ["EVENT_TYPES", "SCHEMA", "PrefabChecker"]

#: The prefab event types, in the order a stream uses them.
EVENT_TYPES: Final = ("start", "progress", "content", "done", "error")
#: The union schema of one prefab event, relative to the schemas directory.
SCHEMA: Final = "prefab/event.schema.json"

# The progress counters of a progress event's data (the contract's ``progress`` invariant).
_COUNTERS: Final = ("current", "total", "percentage")

#: Returned for every event without violations (shared by all checkers: never mutate it).
_NO_VIOLATIONS: Final = NO_VIOLATIONS


class PrefabChecker(ContractEngine):
    """Checks one stream against the prefab contract (a :class:`ContractChecker`).

    >>> from harness import SSEEvent
    >>> c = PrefabChecker()
    >>> c.feed(SSEEvent('{"type": "start"}')), c.feed(SSEEvent('{"type": "done"}'))
    ([], [])
    >>> [v.rule for v in c.feed(SSEEvent('{"type": "content", "data": "late"}'))]
    ['seq.after-terminal']
    """

    __slots__ = ()

    def __init__(self, request: object = None) -> None:
        super().__init__(builtin_contract("prefab"), request)


def __getattr__(name: str) -> Any:
    # Compiled on first use, not at import: importing the rule catalog stays cheap.
    if name == "_validate_json":
        return builtin_contract("prefab").fast
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
