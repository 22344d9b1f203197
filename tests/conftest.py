"""Shared test settings."""

from __future__ import annotations

import os

from hypothesis import settings

# Shared CI machines are noisy: a per-example deadline would make property tests flaky.
settings.register_profile("default", deadline=None, print_blob=True)
settings.register_profile("ci", deadline=None, print_blob=True, max_examples=200)
settings.load_profile("ci" if os.environ.get("CI") else "default")
