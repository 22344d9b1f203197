"""Text shown to people: one way to shorten it."""

from __future__ import annotations

from typing import Final

__all__ = ["ELLIPSIS", "shorten"]

ELLIPSIS: Final = "…"


def shorten(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters, else its start and an ellipsis, in
    ``limit`` characters.

    >>> shorten("abcdef", 4), shorten("abcd", 4)
    ('abc…', 'abcd')
    """
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS
