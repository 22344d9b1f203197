"""The reference gateway's reserved ``error_code``s, read back as the function's fault.

``stream-harness serve`` keeps the contract even when the function does not: an exception
escaping the generator, an item ``json.dumps`` rejects, or a function that returns no iterator
each end the stream with one well-formed ``error`` event carrying a reserved code.  Over HTTP
the contract alone therefore cannot see the bug; property testing and the suites wrap their
checker in :class:`GatewayCodes` so that it is reported under the same rule ``check`` uses for
a generator.  ``check`` itself does not: for any other server such an event conforms.
"""

from __future__ import annotations

from typing import Final

from harness._contracts.generator_rules import GEN_NOT_ITERATOR, GEN_NOT_SERIALIZABLE, GEN_RAISED
from harness._core.roles import Roles, roles_of
from harness._core.rules import Violation, violation
from harness._core.session import ContractChecker
from harness._core.sse import SSEEvent

__all__ = [
    "NOT_AN_ITERATOR_CODE",
    "NOT_SERIALIZABLE_CODE",
    "RAISED_CODE",
    "RESERVED_CODES",
    "GatewayCodes",
    "gateway_error",
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
    failure event, so the contract alone cannot see it; the code says what happened.  The
    rule replaces ``seq.first`` when the function failed before its first event: one
    problem, one violation.  Other gateways never send these codes.  Which events are
    failures, and where their code is, the contract's roles say."""

    def __init__(self, inner: ContractChecker) -> None:
        self.inner = inner
        self.name = inner.name
        self.roles: Roles = roles_of(inner)
        self.index = 0

    def feed(self, event: SSEEvent) -> list[Violation]:
        index, self.index = self.index, self.index + 1
        found = self.inner.feed(event)
        if not self.roles.is_failure(self.inner.event_type(event)):
            return found
        failure = self.roles.failure(event, index)
        if failure is None or failure.code not in RESERVED_CODES:
            return found
        rule_id, template = RESERVED_CODES[failure.code]
        message = template.format(data=failure.message)
        text = f"{message} (the reference gateway's {failure.code} error event)"
        return [violation(rule_id, text, index)] + [v for v in found if v.rule != "seq.first"]

    def finish(self, complete: bool = True) -> list[Violation]:
        return self.inner.finish(complete)

    def event_type(self, event: SSEEvent) -> str:
        return self.inner.event_type(event)


def gateway_error(code: str, message: str) -> dict[str, str]:
    """The failure event ``stream-harness serve`` sends for a function that broke (prefab's
    ``error`` event, with one of the reserved codes or ``GATEWAY_ERROR``)."""
    return {"type": "error", "data": message, "error_code": code}
