"""A fake target module whose import fails (tests/test_gen_runner.py)."""

import fake_dependency_that_is_not_installed  # type: ignore[import-not-found]  # noqa: F401


def counting() -> None:
    pass
