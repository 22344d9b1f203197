"""The rules of ``stream-harness openapi``: what a response owes the OpenAPI document.

A stream is checked against its contract as ``check`` does; these rules add what only the
document can say -- which statuses and media types an operation answers with, the schema of
each item (OpenAPI 3.2 ``itemSchema``), and how requests that break the schema must be
answered.  Pure functions of what was seen: the engine (``harness._proptest.openapi``) calls
them.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness._core.rules import Severity, rule
from harness._core.text import shorten

__all__ = [
    "INVALID_INPUT_ACCEPTED",
    "INVALID_INPUT_RESPONSE",
    "ITEM_SCHEMA",
    "NOTHING_STREAMED",
    "OPENAPI_CONTENT_TYPE",
    "UNDOCUMENTED_STATUS",
    "content_type_mismatch",
    "documented_status",
    "invalid_input_accepted",
    "invalid_input_response",
    "item_schema",
    "nothing_streamed",
    "undocumented_status",
]

INVALID_INPUT_ACCEPTED = "openapi.invalid-input-accepted"
INVALID_INPUT_RESPONSE = "openapi.invalid-input-response"
UNDOCUMENTED_STATUS = "openapi.undocumented-status"
OPENAPI_CONTENT_TYPE = "openapi.content-type"
ITEM_SCHEMA = "openapi.item-schema"
NOTHING_STREAMED = "openapi.nothing-streamed"


def documented_status(status: int, documented: Sequence[str]) -> bool:
    """Whether the document lists ``status``: exactly, as a range (``4XX``) or as ``default``.
    An operation that lists no responses at all documents every status."""
    if not documented:
        return True
    code = str(status)
    for listed in documented:
        text = str(listed).strip().upper()
        if text in ("DEFAULT", code) or (text.endswith("XX") and text[0] == code[0]):
            return True
    return False


@rule(
    INVALID_INPUT_ACCEPTED,
    Severity.ERROR,
    "A request that breaks the document's schema was streamed as if it were valid.",
)
def invalid_input_accepted(case: str, status: int, events: int) -> str:
    """The harness sent a request the document rules out -- a required parameter missing, a
    value of the wrong type, a number out of bounds, a value outside an enum -- and the
    endpoint answered with a normal stream.  It should reject it with a 4xx (FastAPI answers
    422 by itself when the parameters are declared), or end the stream with the contract's
    failure event; otherwise a client's mistake looks like a success, and the code behind the
    endpoint runs on inputs nobody wrote it for."""
    return (
        f"invalid request ({case}) was accepted: HTTP {status} and a normal stream of "
        f"{events} event(s), not a 4xx or a failure event"
    )


@rule(
    INVALID_INPUT_RESPONSE,
    Severity.ERROR,
    "A request that breaks the schema got a 5xx, a hang or a broken stream.",
)
def invalid_input_response(case: str, what: str) -> str:
    """Invalid input must be answered cleanly: a 4xx, or a stream that ends with the contract's
    failure event.  A 5xx means the input reached code that crashed on it; a timeout or a
    broken stream means a client waiting for an answer gets none."""
    return f"invalid request ({case}) got {what}"


@rule(
    UNDOCUMENTED_STATUS,
    Severity.ERROR,
    "The response status is not one the document lists for the operation.",
)
def undocumented_status(status: int, documented: Sequence[str]) -> str | None:
    """The operation's ``responses`` list the statuses a client must be ready for; this one
    is not among them (nor covered by a range such as ``4XX`` or by ``default``).  Either the
    document is incomplete or the endpoint answers in a way its clients do not expect.  (A
    5xx is reported by the rule about the answer -- ``http.status``, or
    ``openapi.invalid-input-response`` -- not here as well: one problem, one violation.)"""
    if status >= 500 or documented_status(status, documented):
        return None
    listed = ", ".join(str(s) for s in documented)
    return f"HTTP {status} is not documented for this operation (it lists: {listed})"


@rule(
    OPENAPI_CONTENT_TYPE,
    Severity.ERROR,
    "The response media type is not the streaming one the document gives.",
)
def content_type_mismatch(actual: str | None, documented: str) -> str | None:
    """The document says the operation streams ``documented`` (e.g. ``text/event-stream``),
    and the response said something else: a client generated from the document would parse
    it wrongly, or not at all."""
    bare = (actual or "").split(";")[0].strip().lower()
    if bare == documented:
        return None
    shown = bare or "no Content-Type"
    return f"the response is {shown}; the document says {documented}"


@rule(ITEM_SCHEMA, Severity.ERROR, "An event does not match the document's itemSchema.")
def item_schema(where: str, problem: str) -> str:
    """OpenAPI 3.2 describes each item of a stream with the media type's ``itemSchema``; this
    event (after WHATWG SSE parsing, or one line of JSON Lines) does not match it.  For SSE,
    an ``itemSchema`` with a ``data`` property describes the whole event (``event``, ``data``,
    ``id``, ``retry``); otherwise it describes the event's data."""
    at = f" at {where}" if where else ""
    return f"the event does not match the itemSchema{at}: {shorten(problem, 160)}"


@rule(
    NOTHING_STREAMED,
    Severity.WARNING,
    "No generated request got a stream: every one was rejected.",
)
def nothing_streamed(examples: int, statuses: Sequence[int]) -> str | None:
    """Every request generated from the document was answered with a documented 4xx, so no
    stream was checked and the operation passed without being tested.  The schemas probably
    allow values the endpoint refuses (an id that must exist, a model that must be loaded):
    narrow them with ``enum``/``pattern``/examples, or supply what is missing with
    ``--header``."""
    if examples == 0:
        return None
    shown = ", ".join(str(s) for s in sorted(set(statuses))[:5])
    return f"all {examples} generated requests were rejected (HTTP {shown}); no stream was checked"
