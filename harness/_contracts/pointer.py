"""JSON pointers (RFC 6901) as contracts use them: ``/data/current``, ``/choices``, ``""``.

A pointer is parsed once, when a contract is loaded, into a tuple of segments; resolving it
against an event is then a short loop.  A pointer that does not resolve yields :data:`MISSING`
(distinct from a JSON ``null``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "MISSING",
    "WILDCARD",
    "Pointer",
    "compile_first",
    "parse_pointer",
    "pointer_name",
    "resolve",
    "resolve_first",
]

Pointer = tuple[str, ...]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def parse_pointer(text: str) -> Pointer:
    """``"/a/b~1c"`` -> ``("a", "b/c")``; raises ValueError for text that is not a pointer."""
    if text == "":
        return ()
    if not text.startswith("/"):
        raise ValueError(f'a JSON pointer starts with "/" (got {text!r})')
    parts = text[1:].split("/")
    for part in parts:
        rest = part.replace("~0", "").replace("~1", "")
        if "~" in rest:
            raise ValueError(f"{text!r}: '~' must be followed by 0 or 1 in a JSON pointer")
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in parts)


def resolve(value: object, pointer: Pointer) -> object:
    """The value at ``pointer`` inside ``value``, or :data:`MISSING`."""
    if len(pointer) == 1 and type(value) is dict:  # the common case, kept cheap
        return value.get(pointer[0], MISSING)
    for part in pointer:
        if isinstance(value, dict):
            value = value.get(part, MISSING)
            if value is MISSING:
                return MISSING
        elif isinstance(value, list) and part.isdigit() and (part == "0" or part[0] != "0"):
            index = int(part)
            if index >= len(value):
                return MISSING
            value = value[index]
        else:
            return MISSING
    return value


#: In a role's pointer, the segment that stands for every element of an array.
WILDCARD: Final = "*"


def resolve_first(value: object, pointer: Pointer, accept: Callable[[object], bool]) -> object:
    """The first value at ``pointer`` that ``accept`` takes, or :data:`MISSING`.

    A :data:`WILDCARD` segment tries each element of an array in turn
    (``/choices/*/delta/content``); at an object it is the key ``*``, as RFC 6901 says.
    """
    return compile_first(pointer, accept)(value)


def compile_first(pointer: Pointer, accept: Callable[[object], bool]) -> Callable[[Any], Any]:
    """:func:`resolve_first` for one pointer, compiled once: ``value -> found or MISSING``."""
    if WILDCARD not in pointer:
        if len(pointer) == 1:
            key = pointer[0]

            def one(value: Any) -> Any:
                found = value.get(key, MISSING) if type(value) is dict else resolve(value, pointer)
                return found if found is not MISSING and accept(found) else MISSING

            return one

        def plain(value: Any) -> Any:
            found = resolve(value, pointer)
            return found if found is not MISSING and accept(found) else MISSING

        return plain
    at = pointer.index(WILDCARD)
    head, rest = pointer[:at], compile_first(pointer[at + 1 :], accept)

    def each(value: Any) -> Any:
        items = resolve(value, head) if head else value
        if type(items) is not list:
            return rest(resolve(items, (WILDCARD,)))
        for item in items:
            found = rest(item)
            if found is not MISSING:
                return found
        return MISSING

    return each


def pointer_name(pointer: Pointer) -> str:
    """How messages name a field: ``/data/current`` -> ``data.current``."""
    return ".".join(pointer) or "the event"


def is_under(path: tuple[str, ...], pointer: Pointer) -> bool:
    """``path`` (a schema error's location) is ``pointer`` or inside the value it points to."""
    return path[: len(pointer)] == pointer
