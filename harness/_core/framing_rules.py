"""The rules of a stream's framing: what the decoders (:mod:`harness._core.sse`,
:mod:`harness._core.framing`) saw that is not an event.  Each is reported once per stream,
with a count, however often it happened: one problem, one violation.
"""

from __future__ import annotations

from harness._core.framing import SSE, FramingProblem
from harness._core.rules import Severity, Violation, rule, violation
from harness._core.text import shorten

__all__ = [
    "framing_violations",
    "ndjson_line_too_large",
    "ndjson_not_json",
    "sse_no_events",
    "sse_unknown_field",
]

_SHOW = 120


def _more(count: int) -> str:
    if count <= 1:
        return ""
    return f" (and {count - 1} more line{'s' if count > 2 else ''} like it)"


@rule("sse.unknown-field", Severity.WARNING, "A line was not a field SSE knows, nor a comment.")
def sse_unknown_field(count: int, offset: int, line: bytes) -> str | None:
    """A line of the stream was neither ``data:``, ``event:``, ``id:``, ``retry:`` nor a
    comment (``:``).  The SSE specification says a client ignores such a line, so whatever it
    held is lost without a trace.  It is almost always an unescaped newline inside data: a
    multi-line error written as ``data: line1\\nline2`` loses ``line2``, and a token holding a
    newline loses its second half.  Send each line of the text as its own ``data:`` line
    (every SSE library does this for you)."""
    if count <= 0:
        return None
    text = line.decode("utf-8", "replace")
    shown = shorten(text, _SHOW)
    return (
        f"the line {shown!r} at byte {offset} is not a field (data/event/id/retry) nor a "
        f"comment; a client ignores it -- an unescaped newline inside data?{_more(count)}"
    )


@rule("sse.no-events", Severity.ERROR, "The body had bytes but not one SSE event.")
def sse_no_events(bytes_fed: int, events: int) -> str | None:
    """The response body was not empty, yet an SSE client would have dispatched no event from
    it: no line was a ``data:`` field followed by a blank line.  The body is probably not an
    event stream at all (plain text, JSON lines, an HTML error page), or its lines lack the
    ``data:`` prefix.  A contract for another framing (``framing: text`` or ``ndjson``) reads
    such bodies as what they are."""
    if bytes_fed <= 0 or events > 0:
        return None
    return (
        f"the body had {bytes_fed} byte{'s' if bytes_fed != 1 else ''} but no SSE event "
        "(no `data:` line ended by a blank line); is it an event stream?"
    )


@rule("ndjson.line-too-large", Severity.ERROR, "An NDJSON line was larger than --max-event-bytes.")
def ndjson_line_too_large(problem: FramingProblem) -> str:
    """One line of an NDJSON / JSON Lines stream was larger than ``--max-event-bytes``.  Its
    bytes were skipped, never buffered, so memory stays flat; the rest of the stream is
    checked.  Raise ``--max-event-bytes`` if values that large are expected."""
    return (
        f"the line at byte {problem.offset} has {problem.detail}; skipped "
        f"(--max-event-bytes){_more(problem.count)}"
    )


@rule("ndjson.not-json", Severity.ERROR, "An NDJSON line was not a JSON value.")
def ndjson_not_json(problem: FramingProblem) -> str:
    """In NDJSON / JSON Lines every non-blank line is one JSON value.  This line did not parse
    (or was not UTF-8), so a client's ``json.loads(line)`` raises on it.  Common causes: a
    value pretty-printed over several lines, a log line written to the same stream, or an
    SSE ``data:`` prefix on an NDJSON endpoint."""
    return (
        f"the line {problem.preview!r} at byte {problem.offset} is not JSON: "
        f"{problem.detail}{_more(problem.count)}"
    )


_FRAMING_RULES = {
    "ndjson.line-too-large": ndjson_line_too_large,
    "ndjson.not-json": ndjson_not_json,
}


def framing_violations(
    framing: str, decoder: object, events: int, complete: bool
) -> list[Violation]:
    """What ``decoder`` (finished) saw beside the events, as violations of the rules above.

    ``complete=False`` (cut short by a cause already reported) leaves out ``sse.no-events``.
    """
    found: list[Violation] = []
    if framing == SSE:
        first = getattr(decoder, "first_unknown_field", None)
        if first is not None:
            msg = sse_unknown_field(getattr(decoder, "unknown_fields", 1), *first)
            if msg:
                found.append(violation("sse.unknown-field", msg))
        if complete:
            msg = sse_no_events(getattr(decoder, "bytes_fed", 0), events)
            if msg:
                found.append(violation("sse.no-events", msg))
        return found
    problems: dict[str, FramingProblem] = getattr(decoder, "problems", {})
    for rule_id, problem in problems.items():
        found.append(violation(rule_id, _FRAMING_RULES[rule_id](problem)))
    return found
