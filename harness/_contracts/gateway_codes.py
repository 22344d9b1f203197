"""The reference gateway's reserved ``error_code``s, read back as the function's fault.

``stream-harness serve`` keeps the contract even when the function does not: an exception
escaping the generator, an item ``json.dumps`` rejects, or a function that returns no iterator
each end the stream with one well-formed ``error`` event carrying a reserved code.  Over HTTP
the contract alone therefore cannot see the bug; property testing and the suites wrap their
checker in :class:`GatewayCodes` so that it is reported under the same rule ``check`` uses for
a generator.  ``check`` itself does not: for any other server such an event conforms.
"""

from __future__ import annotations

import json
from typing import Final

from harness._contracts.generator_rules import GEN_NOT_ITERATOR, GEN_NOT_SERIALIZABLE, GEN_RAISED
from harness._core.rules import Violation, violation
from harness._core.session import ContractChecker
from harness._core.sse import SSEEvent

__all__ = [
    "NOT_AN_ITERATOR_CODE",
    "NOT_SERIALIZABLE_CODE",
    "RAISED_CODE",
    "RESERVED_CODES",
    "GatewayCodes",
]

#: ``error_code`` of the error event that ends a stream whose generator raised.
RAISED_CODE: Final = "UNHANDLED_EXCEPTION"
#: ``error_code`` of the error event sent instead of an item ``json.dumps`` rejects.
NOT_SERIALIZABLE_CODE: Final = "NOT_SERIALIZABLE"
#: ``error_code`` of the error event sent when a streaming function returns no iterator.
NOT_AN_ITERATOR_CODE: Final = "NOT_AN_ITERATOR"

#: The ``error_code`` values with which ``stream-harness serve`` ends a stream the function
#: broke, and the rule each one means -- as ``check`` reports them for a generator.
RESERVED_CODES: dict[str, tuple[str, str]] = {
    RAISED_CODE: (GEN_RAISED, "the function raised {data}"),
    NOT_SERIALIZABLE_CODE: (GEN_NOT_SERIALIZABLE, "{data}"),
    NOT_AN_ITERATOR_CODE: (GEN_NOT_ITERATOR, "the function {data}"),
}


class GatewayCodes:
    """A contract checker that also reads the reference gateway's reserved ``error_code``s as
    the function's fault.  Over HTTP the gateway turns an exception into a well-formed
    ``error`` event, so the contract alone cannot see it; the code says what happened.  The
    rule replaces ``seq.first`` when the function failed before its ``start`` event: one
    problem, one violation.  Other gateways never send these codes."""

    def __init__(self, inner: ContractChecker) -> None:
        self.inner = inner
        self.name = inner.name
        self.index = 0

    def feed(self, event: SSEEvent) -> list[Violation]:
        index, self.index = self.index, self.index + 1
        found = self.inner.feed(event)
        if "error_code" not in event.data:
            return found
        reserved = _reserved(event.data)
        if reserved is None:
            return found
        code, rule_id, message = reserved
        text = f"{message} (the reference gateway's {code} error event)"
        return [violation(rule_id, text, index)] + [v for v in found if v.rule != "seq.first"]

    def finish(self, complete: bool = True) -> list[Violation]:
        return self.inner.finish(complete)

    def event_type(self, event: SSEEvent) -> str:
        return self.inner.event_type(event)


def _reserved(data: str) -> tuple[str, str, str] | None:
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("type") != "error":
        return None
    code = obj.get("error_code")
    if code not in RESERVED_CODES:
        return None
    rule_id, template = RESERVED_CODES[code]
    return code, rule_id, template.format(data=obj.get("data"))
