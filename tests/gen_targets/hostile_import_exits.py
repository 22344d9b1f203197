"""A module whose import kills the worker importing it (for tests/test_hostile_targets.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

os._exit(5)


def stream() -> Iterator[int]:
    yield 1
