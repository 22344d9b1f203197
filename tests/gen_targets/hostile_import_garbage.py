"""A module whose import writes garbage into the worker's protocol pipe (for
tests/test_hostile_targets.py): the fd is on the worker's command line."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

_FD = int(next(a for a in sys.argv if a.startswith("--out-fd=")).partition("=")[2])
os.write(_FD, b"call me maybe\n")


def stream() -> Iterator[int]:
    yield 1
