"""The ``roles`` section of a contract file: what its event types mean, compiled once.

::

    roles:
      content:                       # what a user sees; an absent, null or empty value is not
        - {type: chunk, pointer: /choices/*/delta/content}
      failure:                       # the stream failed in-band; its code and message
        - {type: error, code: /error/code, message: /error/message}
      terminal: ["[DONE]", error]    # the types that end a stream
      restart: [start]               # a type that means the stream started over
      progress:                      # progress counters; a list tries each pointer in turn
        types: [progress]
        current: [/data/current, /data/processed]
        total: /data/total
      usage:                         # where the stream reports the output tokens it produced
        - {type: usage, output_tokens: /usage/completion_tokens}

Each role is optional; a contract that leaves one out gets a default read from the rest of
the file (see :func:`compile_roles`), so every contract file written before roles existed
keeps meaning what it meant.  :class:`ContractRoles` is the compiled, shared value;
:class:`BoundRoles` answers for one checker (it implements :class:`harness._core.roles.Roles`)
from the events that checker already parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from harness._contracts.invariants import ContractError
from harness._contracts.order import Order
from harness._contracts.pointer import MISSING, Pointer, compile_first, parse_pointer, resolve
from harness._contracts.rules import show
from harness._core.roles import Failure
from harness._core.sse import SSEEvent

__all__ = ["BoundRoles", "ContractRoles", "ProgressRole", "compile_roles"]

#: Without a ``content`` role, types with these names are content (what the harness assumed
#: before contracts declared roles), so existing contract files keep their first_content_ms.
LEGACY_CONTENT: Final = frozenset({"content", "content_block_delta", "delta", "chunk", "token"})

#: The progress counters a ``progress`` role (and invariant) may name.
COUNTERS: Final = ("current", "total", "percentage")

#: A content getter: the parsed event -> its content, or MISSING.
Getter = Callable[[Any], Any]


def is_empty(value: object) -> bool:
    """Absent, null, ``""``, ``[]`` or ``{}``: not content."""
    if value is MISSING or value is None:
        return True
    kind = type(value)  # exact types: this runs per event, and JSON gives no subclasses
    return (kind is str or kind is list or kind is dict) and not value


def _non_empty(value: object) -> bool:
    return not is_empty(value)


def _anything(value: object) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class FailureRole:
    """Where a failure type keeps its code and message (None: it has none)."""

    code: Pointer | None = None
    message: Pointer | None = None


@dataclass(frozen=True, slots=True)
class ProgressRole:
    """Progress counters: name (``current``/``total``/``percentage``) -> pointers tried in turn."""

    types: frozenset[str] | None
    counters: Mapping[str, tuple[Pointer, ...]]


@dataclass(frozen=True, slots=True)
class ContractRoles:
    """A contract's compiled roles; shared by every stream, never mutated."""

    #: type -> the getters of its content, tried in turn (empty: the whole event is content).
    content: Mapping[str, tuple[Getter, ...]] = field(default_factory=dict)
    failure: Mapping[str, FailureRole] = field(default_factory=dict)
    terminal: frozenset[str] = frozenset()
    restart: frozenset[str] = frozenset()
    progress: ProgressRole | None = None
    text: bool = False  # the data is plain text, not JSON
    #: type -> where its output-token count is (``usage``).
    usage: Mapping[str, Pointer] = field(default_factory=dict)

    def tokens_of(self, kind: str, obj: object) -> int | None:
        """The output tokens an event of type ``kind`` (parsed as ``obj``) reports, or None."""
        pointer = self.usage.get(kind)
        if pointer is None or obj is MISSING:
            return None
        value = resolve(obj, pointer)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        return None

    def content_of(self, kind: str, obj: object) -> object | None:
        """The content of an event of type ``kind`` parsed as ``obj``, or None."""
        getters = self.content.get(kind)
        if getters is None or obj is MISSING:
            return None
        if not getters:
            return obj
        for get in getters:
            value: object = get(obj)
            if value is not MISSING:
                return value
        return None

    def failure_of(self, kind: str, obj: object, index: int = -1) -> Failure | None:
        role = self.failure.get(kind)
        if role is None:
            return None
        code = message = None
        if obj is not MISSING:
            if role.code is not None:
                code = _code(resolve(obj, role.code))
            if role.message is not None:
                value = resolve(obj, role.message)
                message = value if isinstance(value, str) else None
            elif self.text and isinstance(obj, str):
                message = obj
        return Failure(kind, code, message, index)

    def bind(
        self,
        kind_of: Callable[[SSEEvent], str],
        parsed: Callable[[SSEEvent], object],
        failed: Callable[[], tuple[str, object, int] | None],
    ) -> BoundRoles:
        """The roles of one checker: ``kind_of`` and ``parsed`` say what it made of an event,
        ``failed`` which failure event it saw first (type, content, index), if any."""
        return BoundRoles(self, kind_of, parsed, failed)


def _code(value: object) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


class BoundRoles:
    """:class:`harness._core.roles.Roles` for one checker, from the events it parsed."""

    __slots__ = (
        "_content",
        "_failed",
        "_failure",
        "_kind_of",
        "_parsed",
        "_restart",
        "_terminal",
        "_usage",
        "of",
    )

    def __init__(
        self,
        roles: ContractRoles,
        kind_of: Callable[[SSEEvent], str],
        parsed: Callable[[SSEEvent], object],
        failed: Callable[[], tuple[str, object, int] | None],
    ) -> None:
        self.of = roles
        self._kind_of, self._parsed, self._failed = kind_of, parsed, failed
        self._content, self._failure = roles.content, roles.failure
        self._terminal, self._restart = roles.terminal, roles.restart
        self._usage = roles.usage

    def is_content(self, event: SSEEvent) -> bool:
        # Runs per event under load: the getters are called here, without content_of's lookup.
        getters = self._content.get(self._kind_of(event))
        if getters is None:
            return False
        if not getters:
            return True
        obj = self._parsed(event)
        if obj is MISSING:
            return False
        for get in getters:  # noqa: SIM110 -- a loop: cheaper than any() over a generator
            if get(obj) is not MISSING:
                return True
        return False

    def content(self, event: SSEEvent) -> object | None:
        kind = self._kind_of(event)
        if kind not in self._content:
            return None
        return self.of.content_of(kind, self._parsed(event))

    def is_failure(self, kind: str) -> bool:
        return kind in self._failure

    def failure(self, event: SSEEvent, index: int = -1) -> Failure | None:
        kind = self._kind_of(event)
        if kind not in self._failure:
            return None
        return self.of.failure_of(kind, self._parsed(event), index)

    def stream_failure(self) -> Failure | None:
        seen = self._failed()
        return None if seen is None else self.of.failure_of(*seen)

    def is_terminal(self, kind: str) -> bool:
        return kind in self._terminal

    def is_restart(self, kind: str) -> bool:
        return kind in self._restart

    def output_tokens(self, event: SSEEvent) -> int | None:
        if not self._usage:
            return None
        kind = self._kind_of(event)
        if kind not in self._usage:
            return None
        return self.of.tokens_of(kind, self._parsed(event))


# -- compiling the section ------------------------------------------------------------------


class _Reader:
    def __init__(self, types: Sequence[str], json: bool) -> None:
        self.types, self.json = types, json

    def declared(self, name: object, where: str) -> str:
        if name not in self.types:
            raise ContractError(
                where, f"unknown type {show(name)} (the contract's types: {', '.join(self.types)})"
            )
        assert isinstance(name, str)
        return name

    def pointer(self, text: object, where: str) -> Pointer:
        if not self.json:
            raise ContractError(
                where,
                "a text contract's events have no fields to point into: leave the pointer out "
                "(the whole event is the value)",
            )
        if not isinstance(text, str):
            raise ContractError(where, f"expected a JSON pointer such as /data, got {show(text)}")
        try:
            return parse_pointer(text)
        except ValueError as e:
            raise ContractError(where, str(e)) from None

    def pointers(self, value: object, where: str) -> tuple[Pointer, ...]:
        if isinstance(value, list):
            return tuple(self.pointer(v, f"{where}/{i}") for i, v in enumerate(value))
        return (self.pointer(value, where),)

    def type_list(self, value: Iterable[object], where: str) -> frozenset[str]:
        return frozenset(self.declared(name, f"{where}/{i}") for i, name in enumerate(value))


def compile_roles(
    raw: Mapping[str, Any] | None,
    *,
    types: Sequence[str],
    json: bool,
    order: Order,
    failure: frozenset[str],
) -> ContractRoles:
    """Compile a contract's ``roles`` section (None: it has none), with the defaults.

    Defaults, role by role: ``content`` -- the types named ``content``, ``content_block_delta``,
    ``delta``, ``chunk`` or ``token``, whole; ``failure`` -- the order's ``failure`` and
    ``abort`` types, without a code; ``terminal`` -- the types after which the order allows
    nothing more; ``restart`` -- the types the order allows only as the first event;
    ``progress`` and ``usage`` -- none.
    """
    raw = raw or {}
    r = _Reader(types, json)
    content: dict[str, tuple[Getter, ...]] = {}
    if "content" in raw:
        whole: set[str] = set()
        for i, entry in enumerate(raw["content"]):
            where = f"/roles/content/{i}"
            kind = r.declared(entry["type"], f"{where}/type")
            if kind in whole or ("pointer" not in entry and kind in content):
                raise ContractError(
                    where,
                    f"type {show(kind)} is listed twice, once without a pointer (the whole "
                    "event): give every entry of a type a pointer, or list it once without",
                )
            if "pointer" in entry:
                pointer = r.pointer(entry["pointer"], f"{where}/pointer")
                accept = _non_empty if entry.get("non_empty", True) else _anything
                content[kind] = (*content.get(kind, ()), _getter(pointer, accept))
            else:
                whole.add(kind)
                content[kind] = ()
    else:
        content = {kind: () for kind in types if kind in LEGACY_CONTENT}
    failures: dict[str, FailureRole] = {}
    if "failure" in raw:
        for i, entry in enumerate(raw["failure"]):
            where = f"/roles/failure/{i}"
            kind = r.declared(entry["type"], f"{where}/type")
            code = r.pointer(entry["code"], f"{where}/code") if "code" in entry else None
            message = (
                r.pointer(entry["message"], f"{where}/message") if "message" in entry else None
            )
            failures[kind] = FailureRole(code, message)
    else:
        failures = {kind: FailureRole() for kind in types if kind in failure}
    if "terminal" in raw:
        terminal = r.type_list(raw["terminal"], "/roles/terminal")
    else:
        terminal = frozenset(
            name
            for moves in order.transitions
            for name, target in moves.items()
            if target in order.ended
        )
    if "restart" in raw:
        restart = r.type_list(raw["restart"], "/roles/restart")
    else:
        restart = order.only_first
    progress = _progress(raw["progress"], r) if "progress" in raw else None
    usage: dict[str, Pointer] = {}
    for i, entry in enumerate(raw.get("usage", ())):
        where = f"/roles/usage/{i}"
        kind = r.declared(entry["type"], f"{where}/type")
        usage[kind] = r.pointer(entry["output_tokens"], f"{where}/output_tokens")
    return ContractRoles(content, failures, terminal, restart, progress, not json, usage)


def _getter(pointer: Pointer, accept: Callable[[object], bool]) -> Getter:
    if len(pointer) == 1 and accept is _non_empty:  # prefab's /data: the common case, inlined
        key = pointer[0]

        def get(obj: Any) -> Any:
            value = obj.get(key) if type(obj) is dict else None
            if value is None:
                return MISSING
            kind = type(value)
            return MISSING if (kind is str or kind is list or kind is dict) and not value else value

        return get
    return compile_first(pointer, accept)


def _progress(raw: Mapping[str, Any], r: _Reader) -> ProgressRole:
    types = r.type_list(raw["types"], "/roles/progress/types") if "types" in raw else None
    counters = {
        name: r.pointers(raw[name], f"/roles/progress/{name}") for name in COUNTERS if name in raw
    }
    if not counters:
        raise ContractError(
            "/roles/progress", 'give at least one of "current", "total", "percentage"'
        )
    return ProgressRole(types, counters)
