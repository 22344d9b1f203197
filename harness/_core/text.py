"""Text shown to people: one way to shorten it."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["ELLIPSIS", "readable_escapes", "shorten"]

ELLIPSIS: Final = "…"


def shorten(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters, else its start and an ellipsis, in
    ``limit`` characters.

    >>> shorten("abcdef", 4), shorten("abcd", 4)
    ('abc…', 'abcd')
    """
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


# A JSON \uXXXX escape (and the low half of a surrogate pair after it), not itself escaped:
# preceded by an even number of backslashes.
_ESCAPE: Final = re.compile(
    r"(?<!\\)((?:\\\\)*)\\u([0-9a-fA-F]{4})(?:\\u(d[c-f][0-9a-fA-F]{2}))?", re.IGNORECASE
)


def _char(m: re.Match[str]) -> str:
    lead, hi, lo = m.group(1), int(m.group(2), 16), m.group(3)
    if 0xD800 <= hi < 0xDC00 and lo is not None:
        return lead + chr(0x10000 + ((hi - 0xD800) << 10) + (int(lo, 16) - 0xDC00))
    if hi < 0x20 or hi in (0x22, 0x5C, 0x7F) or 0xD800 <= hi < 0xE000 or 0x2028 <= hi <= 0x2029:
        return m.group(0)  # a control, quote, backslash or lone surrogate: keep it escaped
    return lead + chr(hi) + (f"\\u{lo}" if lo is not None else "")


def readable_escapes(text: str) -> str:
    r"""JSON text with its ``\uXXXX`` escapes of printable characters written as the characters,
    so a transcript shows a Chinese token as Chinese (servers using Python's ``json.dumps``
    escape everything beyond ASCII).  Escapes that matter to JSON stay as they are.

    >>> readable_escapes('{"t": "\\u4f60\\u597d", "q": "\\u0022", "e": "\\ud83d\\ude00"}')
    '{"t": "你好", "q": "\\u0022", "e": "😀"}'
    >>> readable_escapes('"\\\\u4f60"')  # an escaped backslash, then "u4f60": not an escape
    '"\\\\u4f60"'
    """
    if "\\u" not in text:
        return text
    return _ESCAPE.sub(_char, text)
