"""What a contract's event types mean, as the layers above the contracts ask it.

Only a contract knows that prefab's ``content`` and OpenAI's ``chunk`` with a non-empty
``delta.content`` are what a user sees, that an ``error`` event is an in-band failure whose
code sits at ``/error_code`` (or ``/error/code``, or ``/error/type``), or that a second
``start`` means the stream started over.  The code that measures and judges streams -- time to
first content, error tallies, resumption, property tests -- asks a :class:`Roles` instead of
spelling type names, so a new contract (a file) brings its own vocabulary.

A checker that knows its contract's roles has a ``roles`` attribute; :func:`roles_of` reads it,
and gives :data:`NO_ROLES` (nothing is content, nothing fails in-band) for one that has none.
Questions about an event take the event itself: the checker that just checked it answers from
what it already parsed, so asking costs a dictionary lookup, not a second parse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from harness._core.sse import SSEEvent

__all__ = ["NO_ROLES", "Failure", "Roles", "roles_of"]


@dataclass(frozen=True, slots=True)
class Failure:
    """An in-band failure: an event of a type the contract calls a failure.

    ``code`` is the machine-readable code where the contract says it is (a number is given as
    its decimal text), None when the event carries none; ``message`` the text for people, if
    any; ``index`` the event's index in the stream (-1 when not known).
    """

    kind: str
    code: str | None = None
    message: str | None = None
    index: int = -1


class Roles(Protocol):
    """The roles of one checker's event types (see the module docstring).

    ``event`` is an event the checker has been fed (answers about others may cost a parse);
    ``kind`` is the name :meth:`ContractChecker.event_type` gives an event.
    """

    def is_content(self, event: SSEEvent) -> bool:
        """The event carries content a user sees (a non-empty value where the contract says)."""
        ...

    def content(self, event: SSEEvent) -> object | None:
        """The content the event carries (text, usually), or None when it carries none."""
        ...

    def is_failure(self, kind: str) -> bool:
        """Events of this type mean the stream failed in-band."""
        ...

    def failure(self, event: SSEEvent, index: int = -1) -> Failure | None:
        """The failure the event reports (its code and message), or None for other events;
        ``index`` is the event's index in the stream, kept in the :class:`Failure`."""
        ...

    def stream_failure(self) -> Failure | None:
        """The first failure among the events the checker has been fed so far, or None.

        The checker notes it as it checks, so asking once, at the end, costs nothing per event.
        """
        ...

    def is_terminal(self, kind: str) -> bool:
        """Events of this type end a stream (its final event, or a failure that ends it)."""
        ...

    def is_restart(self, kind: str) -> bool:
        """Events of this type open a stream: one after a reconnect means it started over."""
        ...

    def output_tokens(self, event: SSEEvent) -> int | None:
        """The output tokens the stream reports so far in this event (its usage: OpenAI's usage
        chunk, Anthropic's ``message_delta``, Ollama's ``eval_count``), or None."""
        ...


class _NoRoles:
    """The roles of a checker that declares none."""

    __slots__ = ()

    def is_content(self, event: SSEEvent) -> bool:
        return False

    def content(self, event: SSEEvent) -> object | None:
        return None

    def is_failure(self, kind: str) -> bool:
        return False

    def failure(self, event: SSEEvent, index: int = -1) -> Failure | None:
        return None

    def stream_failure(self) -> Failure | None:
        return None

    def is_terminal(self, kind: str) -> bool:
        return False

    def is_restart(self, kind: str) -> bool:
        return False

    def output_tokens(self, event: SSEEvent) -> int | None:
        return None


#: Nothing is content, nothing fails, nothing ends or restarts a stream.
NO_ROLES: Final[Roles] = _NoRoles()


def roles_of(checker: object) -> Roles:
    """The roles a checker declares (its ``roles`` attribute), or :data:`NO_ROLES`."""
    roles: Roles = getattr(checker, "roles", NO_ROLES)
    return roles
