"""Counting what the tool sent: shared by the apps, read by the end-to-end tests."""

from __future__ import annotations

import threading
from collections import Counter


class Tally:
    """Requests each planted-bug operation handled, and the one at which its bug first fired:
    the examples the tool needed to find it (a request refused with a 422 never counts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hits: Counter[str] = Counter()
        self.first_bug: dict[str, int] = {}

    def hit(self, label: str) -> None:
        with self._lock:
            self.hits[label] += 1

    def bug(self, label: str) -> None:
        with self._lock:
            self.first_bug.setdefault(label, self.hits[label])

    def reset(self) -> None:
        with self._lock:
            self.hits.clear()
            self.first_bug.clear()


TALLY = Tally()
