"""Resumption after a dropped connection, sans-I/O: event ids in, violations out.

With ``--resume-after K`` the HTTP runner reads K events, drops the connection, waits the
server's ``retry:`` hint and reconnects with ``Last-Event-ID`` -- what a browser's EventSource
does after a network blip.  A server that supports resumption continues right after that id.
:class:`ResumeTracker` is told the id of every event, before the drop and after the reconnect,
and reports how the continuation went wrong:

    resume.no-id       an event without an id: a client would have nothing to resume from
    resume.ignored     the server started over (the first id again, or an event of a type
                       the contract's roles call a restart, such as prefab's first event)
    resume.gap         numeric ids: the first resumed id skips past last + 1
    resume.duplicate   an id at or before the last one seen: events delivered twice

Ids are compared as integers when both are decimal numbers, else as opaque strings (only
equality means anything then, so a gap cannot be seen).  An event's ``id`` is the id *in force*
when it was dispatched (the SSE spec carries the last id over to events that set none), so an
id equal to the previous event's is read as "this event set no id of its own", not as a
duplicate.

:class:`ResumingChecker` wraps a contract checker so the tracker sees every event first.  Once
the tracker reports ``resume.ignored`` the restarted stream is not fed to the contract: its
repeated ``start`` would break the contract's ordering rules too, and one problem should give
one violation.  Which types mean "the stream starts here" is the contract's to say
(:meth:`harness._core.roles.Roles.is_restart`).
"""

from __future__ import annotations

from collections.abc import Callable

from harness._core.roles import NO_ROLES, Roles, roles_of
from harness._core.rules import Severity, Violation, rule, violation
from harness._core.session import ContractChecker
from harness._core.sse import SSEEvent

__all__ = ["ResumeTracker", "ResumingChecker"]


@rule("resume.no-id", Severity.ERROR, "An event carried no id, so a client cannot resume after it.")
def resume_no_id(index: int) -> str:
    """With ``--resume-after`` the harness checks that a dropped stream can be resumed.  That
    needs an ``id:`` on the events: after a drop, the client sends the last id it saw in the
    ``Last-Event-ID`` header and the server continues after it.  An event without an id leaves
    the client nothing to send, so after a drop it can only start the whole stream over.  Send
    ``id: <n>`` with every event (a counter is enough).  Reported once, at the first such event;
    when the event before the drop has no id the harness does not reconnect at all."""
    return f"event {index} has no id: after a drop here a client has no Last-Event-ID to send"


@rule("resume.ignored", Severity.ERROR, "After a reconnect the server started the stream over.")
def resume_ignored(index: int, event_id: str, kind: str, last_id: str, restart: bool) -> str:
    """The harness reconnected with ``Last-Event-ID`` set to the last id it had seen, and the
    server answered with the stream from its beginning (the first id again, or a new event of
    a type that opens a stream, such as prefab's ``start``) instead of the events after that
    id.  A client would show everything twice, and a non-idempotent function ran twice.  Read
    the ``Last-Event-ID`` request header and continue after it -- or, if the stream cannot be
    resumed, do not send ids at all.  The restarted stream is not checked further."""
    what = f"a {kind!r} event" if restart else f"id {event_id!r} again"
    return (
        f"reconnected with Last-Event-ID {last_id!r} and event {index} is {what}: "
        "the server started over instead of resuming"
    )


@rule("resume.unreachable", Severity.ERROR, "The server could not be reached again to resume.")
def resume_unreachable(reason: str) -> str:
    """The harness dropped the connection on purpose (``--resume-after``) and could not connect
    again: refused, DNS or TLS failure, or no connection within ``--first-byte-timeout``.  A
    real client that loses its connection would be stuck the same way.  The events checked
    before the drop are still reported."""
    return f"cannot reconnect to resume: {reason}"


@rule("resume.gap", Severity.ERROR, "After a reconnect the server skipped events.")
def resume_gap(index: int, event_id: int, last_id: int) -> str | None:
    """The harness reconnected with ``Last-Event-ID: N`` and the first event of the resumed
    stream had a numeric id greater than N + 1: the events in between were lost.  Usually an
    off-by-one on the server (continuing after N + 1), or a server whose ids do not count events
    one by one -- in which case the check does not apply, but a client cannot tell either."""
    if event_id <= last_id + 1:
        return None
    missing = event_id - last_id - 1
    return (
        f"reconnected with Last-Event-ID {last_id} and the resumed stream starts at id "
        f"{event_id} (event {index}): {missing} event(s) lost"
    )


@rule("resume.duplicate", Severity.ERROR, "After a reconnect the server sent an event again.")
def resume_duplicate(index: int, event_id: str, last_id: str) -> str:
    """After the reconnect an event came with an id the client had already seen (numeric ids:
    one not greater than the last id seen), so the client gets that event twice.  Usually the
    server resumes *at* ``Last-Event-ID`` instead of after it.  Reported once, at the first
    repeated event."""
    return (
        f"event {index} has id {event_id!r}, already seen (last id before it: {last_id!r}): "
        "the resumed stream repeats events"
    )


def _number(event_id: str) -> int | None:
    return int(event_id) if event_id.isascii() and event_id.isdigit() else None


class ResumeTracker:
    """Follows the ids of one stream across one reconnect.

    Call :meth:`feed` for every event in order, :meth:`reconnect` between the two connections.

    >>> t = ResumeTracker()
    >>> [t.feed(i, n) for n, i in enumerate(["1", "2"])]
    [[], []]
    >>> t.reconnect()
    >>> [v.rule for v in t.feed("4", 2)]
    ['resume.gap']
    """

    def __init__(self, is_restart: Callable[[str], bool] = NO_ROLES.is_restart) -> None:
        #: Whether an event of a kind opens a stream (the contract's restart role).
        self.is_restart = is_restart
        #: The reconnect happened.
        self.resumed = False
        #: The server started over after the reconnect; nothing further is checked.
        self.ignored = False
        self._before = 0  # events before the drop
        self._after = 0  # events since the reconnect
        self._first_id = ""
        self._last_id = ""  # id in force at the last event fed
        self._high: int | None = None  # highest numeric id seen
        self._seen: set[str] = set()
        self._reported: set[str] = set()

    def reconnect(self) -> None:
        """The connection was dropped; the next event fed is the first of the resumed stream."""
        self.resumed = True

    def feed(self, event_id: str, index: int, kind: str = "") -> list[Violation]:
        """The next event's id (``""`` if none in force), session index and kind."""
        if self.ignored:
            return []
        found: list[Violation] = []
        if not self.resumed:
            self._before += 1
            if self._before == 1:
                self._first_id = event_id
        elif self._after == 0 and self._started_over(event_id, kind):
            self.ignored = True
            return [
                violation(
                    "resume.ignored",
                    resume_ignored(index, event_id, kind, self._last_id, self.is_restart(kind)),
                    index,
                )
            ]
        if not event_id:
            self._once(found, "resume.no-id", resume_no_id(index), index)
        else:
            # The first resumed event always counts as new: its decoder started afresh.
            new = event_id != self._last_id or (self.resumed and self._after == 0)
            if self.resumed and new:
                self._check_resumed(event_id, index, found)
            self._remember(event_id)
        if self.resumed:
            self._after += 1
        self._last_id = event_id
        return found

    def _started_over(self, event_id: str, kind: str) -> bool:
        if self.is_restart(kind):
            return True
        # With one event before the drop, its id again is as likely an off-by-one resumption.
        return bool(event_id) and event_id == self._first_id and self._before > 1

    def _check_resumed(self, event_id: str, index: int, found: list[Violation]) -> None:
        num, last = _number(event_id), _number(self._last_id)
        if num is not None and self._high is not None:
            if self._after == 0 and last is not None:
                msg = resume_gap(index, num, last)
                if msg:
                    self._once(found, "resume.gap", msg, index)
            if num <= self._high:
                self._once(
                    found,
                    "resume.duplicate",
                    resume_duplicate(index, event_id, self._last_id),
                    index,
                )
        elif event_id in self._seen:
            self._once(
                found, "resume.duplicate", resume_duplicate(index, event_id, self._last_id), index
            )

    def _remember(self, event_id: str) -> None:
        self._seen.add(event_id)
        num = _number(event_id)
        if num is not None and (self._high is None or num > self._high):
            self._high = num

    def _once(self, found: list[Violation], rule_id: str, message: str, index: int) -> None:
        if rule_id not in self._reported:
            self._reported.add(rule_id)
            found.append(violation(rule_id, message, index))


class ResumingChecker:
    """A contract checker that runs a :class:`ResumeTracker` on every event before the contract.

    After ``resume.ignored`` the events are no longer passed to the contract (see the module
    docstring); ``finish`` still is, and the runner finishes such a run with ``complete=False``.
    """

    def __init__(self, inner: ContractChecker, tracker: ResumeTracker | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.roles: Roles = roles_of(inner)
        self.tracker = tracker if tracker is not None else ResumeTracker(self.roles.is_restart)
        self._index = 0

    def feed(self, event: SSEEvent) -> list[Violation]:
        index = self._index
        self._index += 1
        found = self.tracker.feed(event.id, index, self.inner.event_type(event))
        if self.tracker.ignored:
            return found
        if not found:
            return self.inner.feed(event)
        return found + self.inner.feed(event)  # a new list: the inner one may be shared

    def finish(self, complete: bool = True) -> list[Violation]:
        return self.inner.finish(complete=complete)

    def event_type(self, event: SSEEvent) -> str:
        return self.inner.event_type(event)
