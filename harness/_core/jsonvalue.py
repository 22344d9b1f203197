"""Any valid JSON text to Python values: huge integers and deep nesting included.

:func:`json.loads` refuses two kinds of valid JSON.  An integer of more than 4 300 digits
raises ``ValueError`` (Python's limit on int/str conversion, against quadratic-time attacks;
``sys.set_int_max_str_digits`` is process-wide, so it is not touched here), and arrays or
objects nested about a thousand deep raise ``RecursionError``.  Both are JSON, so a stream
carrying them is judged by its schema like any other -- and told, in a warning of its own,
that many clients will choke on it (``json.huge-integer``, ``json.too-deep``).

:func:`loads` takes the fast road (``json.loads``) and only on those two errors a slower one:
``json.loads`` again with a ``parse_int`` hook that builds huge integers by arithmetic, and,
for deep nesting, an iterative parser (an explicit stack, no recursion; strings and numbers are
read by the standard library's own scanners).  An integer is exact up to
:data:`EXACT_DIGITS` digits; past that (the conversion costs time quadratic-ish in the length)
it is a :class:`HugeInt` of the right sign standing beyond every bound a schema can write, so
``minimum``/``maximum`` still judge it right.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from json.decoder import JSONDecodeError
from json.scanner import NUMBER_RE
from typing import Any, Final, NamedTuple

from harness._core.rules import Severity, Violation, rule, violation

__all__ = [
    "EXACT_DIGITS",
    "HugeInt",
    "JSONNote",
    "json_huge_integer",
    "json_notes",
    "json_too_deep",
    "loads",
]

#: Integers up to this many digits are converted exactly (about 5 ms at the limit).
EXACT_DIGITS: Final = 20_000
#: A stand-in magnitude beyond every bound a schema file (itself JSON) can hold.
_BEYOND: Final = 10 ** (EXACT_DIGITS + 1)
_CHUNK: Final = 4_000  # digits int() converts at once, under any limit Python allows

_WS: Final = re.compile(r"[ \t\n\r]*")
#: The standard library's string scanner (C): (text, index after the quote, strict) -> (str, end).
_scanstring: Callable[[str, int, bool], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]


class HugeInt(int):
    """An integer too long for ``str(int)``: its value (exact when ``exact``), its digit count,
    and a short text for messages, since ``str``/``repr`` of the int itself would raise."""

    digits: int
    exact: bool
    text: str

    def __new__(cls, digit_text: str) -> HugeInt:
        negative = digit_text.startswith("-")
        body = digit_text.lstrip("-")
        exact = len(body) <= EXACT_DIGITS
        value = _convert(body) if exact else _BEYOND
        self = super().__new__(cls, -value if negative else value)
        self.digits, self.exact = len(body), exact
        self.text = f"{digit_text[:12]}...{body[-6:]} ({len(body)} digits)"
        return self

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


def _convert(digits: str) -> int:
    """``int(digits)`` by halves, so no single conversion passes the int/str limit."""
    if len(digits) <= _CHUNK:
        return int(digits)
    low = len(digits) // 2
    scale: int = 10**low
    return _convert(digits[:-low]) * scale + _convert(digits[-low:])


class JSONNote(NamedTuple):
    """What made the text hard: the largest integer's digits, the deepest nesting (0: none)."""

    digits: int = 0
    depth: int = 0
    exact: bool = True


class _Ints:
    """A ``parse_int`` hook that lets huge integers through, noting the largest."""

    __slots__ = ("digits", "exact", "limit")

    def __init__(self) -> None:
        self.digits, self.exact = 0, True
        self.limit = sys.get_int_max_str_digits()  # 0: no limit

    def __call__(self, text: str) -> int:
        if self.limit == 0 or len(text.lstrip("-")) <= self.limit:
            return int(text)
        value = HugeInt(text)
        self.digits = max(self.digits, value.digits)
        self.exact = self.exact and value.exact
        return value


def loads(
    text: str, parse_constant: Callable[[str], Any] | None = None
) -> tuple[Any, JSONNote | None]:
    """The value of the JSON ``text``, and a note when it held huge integers or deep nesting.

    Raises ``ValueError`` (``json.JSONDecodeError`` for a syntax error) when it is not JSON,
    exactly when ``json.loads`` would for a reason other than those two.
    """
    try:
        return json.loads(text, parse_constant=parse_constant), None
    except RecursionError:
        pass
    except ValueError as e:
        if "integer string conversion" not in str(e):
            raise
        ints = _Ints()
        try:
            value = json.loads(text, parse_constant=parse_constant, parse_int=ints)
            return value, JSONNote(ints.digits, 0, ints.exact)
        except RecursionError:
            pass
    ints = _Ints()
    value, depth = _parse(text, ints, parse_constant)
    return value, JSONNote(ints.digits, depth, ints.exact)


def json_notes(
    note: JSONNote | None, index: int | None, obj: object = None, checked: bool = True
) -> list[Violation]:
    """The warnings a note calls for (``checked=False``: the schema could not go that deep)."""
    if note is None and checked:
        return []
    note = note or JSONNote()
    found = []
    if note.digits:
        message = json_huge_integer(note.digits, note.exact)
        found.append(violation("json.huge-integer", message, index))
    if note.depth or not checked:
        depth = note.depth or depth_of(obj)
        found.append(violation("json.too-deep", json_too_deep(depth, checked), index))
    return found


def depth_of(value: object) -> int:
    """How deep arrays and objects nest in ``value`` (without recursion)."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, list | dict):
            depth += 1
            deepest = max(deepest, depth)
            todo.extend((v, depth) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


# -- an iterative parser, for nesting deeper than json.loads goes ------------------------------


def _constant(name: str, parse_constant: Callable[[str], Any] | None) -> Any:
    return parse_constant(name) if parse_constant is not None else float(name)


_LITERALS: Final = {"null": None, "true": True, "false": False}


def _scalar(
    s: str, i: int, ints: _Ints, parse_constant: Callable[[str], Any] | None
) -> tuple[Any, int]:
    """The string, number or literal at ``i``, and where it ends."""
    if s.startswith('"', i):
        return _scanstring(s, i + 1, True)
    m = NUMBER_RE.match(s, i)
    if m is not None:
        integer, frac, exp = m.groups()
        if frac or exp:
            return float(integer + (frac or "") + (exp or "")), m.end()
        return ints(integer), m.end()
    for word, value in _LITERALS.items():
        if s.startswith(word, i):
            return value, i + len(word)
    for word in ("NaN", "Infinity", "-Infinity"):
        if s.startswith(word, i):
            return _constant(word, parse_constant), i + len(word)
    raise JSONDecodeError("Expecting value", s, i)


def _key(s: str, i: int) -> tuple[str, int]:
    """An object's key at ``i`` and the colon after it: the key and where its value starts."""
    if not s.startswith('"', i):
        raise JSONDecodeError("Expecting property name enclosed in double quotes", s, i)
    key, i = _scanstring(s, i + 1, True)
    i = _WS.match(s, i).end()  # type: ignore[union-attr]
    if not s.startswith(":", i):
        raise JSONDecodeError("Expecting ':' delimiter", s, i)
    return key, _WS.match(s, i + 1).end()  # type: ignore[union-attr]


def _parse(s: str, ints: _Ints, parse_constant: Callable[[str], Any] | None) -> tuple[Any, int]:
    """``json.loads`` with an explicit stack: the value and its deepest nesting.

    A container is put into its parent when it opens, so closing one is only a pop."""
    ws = _WS.match
    root: list[Any] = []  # holds the top-level value
    stack: list[Any] = [root]  # the open containers, innermost last
    keys: list[str] = []  # for each open object, the key whose value comes next
    depth = 0
    i = ws(s, 0).end()  # type: ignore[union-attr]
    while True:
        parent = stack[-1]
        opener = s[i : i + 1]
        if opener == "[" or opener == "{":
            value: Any = [] if opener == "[" else {}
            i = ws(s, i + 1).end()  # type: ignore[union-attr]
            empty = s.startswith("]" if opener == "[" else "}", i)
            if len(stack) > depth:  # its level: the containers around it, and itself
                depth = len(stack)
        else:
            value, i = _scalar(s, i, ints, parse_constant)
            empty = False
        if type(parent) is list:
            parent.append(value)
        else:
            parent[keys[-1]] = value
        if opener == "[" or opener == "{":
            if not empty:
                stack.append(value)
                if opener == "{":
                    key, i = _key(s, i)
                    keys.append(key)
                continue
            i += 1
        while True:  # after a value: a comma, or the end of its container
            i = ws(s, i).end()  # type: ignore[union-attr]
            top = stack[-1]
            if top is root:
                if i != len(s):
                    raise JSONDecodeError("Extra data", s, i)
                return root[0], depth
            is_list = type(top) is list
            if s.startswith(",", i):
                i = ws(s, i + 1).end()  # type: ignore[union-attr]
                if not is_list:
                    keys[-1], i = _key(s, i)
                break
            if not s.startswith("]" if is_list else "}", i):
                raise JSONDecodeError("Expecting ',' delimiter", s, i)
            i += 1
            stack.pop()
            if not is_list:
                keys.pop()


# -- the rules -------------------------------------------------------------------------------


@rule(
    "json.huge-integer",
    Severity.WARNING,
    "An integer in the data has more digits than many JSON parsers accept.",
)
def json_huge_integer(digits: int, exact: bool = True) -> str:
    """Valid JSON, and checked against the schema as the number it is -- but Python's
    ``json.loads`` refuses an integer of more than 4 300 digits (``ValueError``, unless the
    client calls ``sys.set_int_max_str_digits()``), and JavaScript's ``JSON.parse`` reads it as
    a rounded float or ``Infinity``.  Send such values as strings."""
    how = (
        "it was checked as the number it is"
        if exact
        else f"beyond {EXACT_DIGITS} digits it was checked only as a number beyond every bound"
    )
    return (
        f"an integer of {digits} digits: valid JSON, but Python's json.loads refuses more "
        f"than 4300 digits and JavaScript rounds it; {how}"
    )


@rule(
    "json.too-deep",
    Severity.WARNING,
    "The data nests arrays or objects deeper than many JSON parsers go.",
)
def json_too_deep(depth: int, checked: bool = True) -> str:
    """Valid JSON, but Python's ``json.loads`` raises ``RecursionError`` at about a thousand
    levels and other parsers stop earlier (pydantic at 200).  The event is read with an
    iterative parser and checked against its schema as deep as the validator goes; what lies
    deeper is not judged."""
    how = (
        "it was checked against its schema"
        if checked
        else "its schema could not be checked that deep, so it was not judged"
    )
    return (
        f"the data nests {depth} levels deep: valid JSON, but deeper than Python's "
        f"json.loads goes (about 1000 levels); {how}"
    )
