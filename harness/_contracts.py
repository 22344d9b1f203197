"""Contracts by name: the checker for each one a user can pass to ``--contract``."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from harness._errors import UsageError
from harness._session import ContractChecker

__all__ = ["contract_names", "get_checker"]


def _prefab() -> ContractChecker:
    from harness._prefab import PrefabChecker

    return PrefabChecker()


_FACTORIES: dict[str, Callable[[], ContractChecker]] = {"prefab": _prefab}


def contract_names() -> list[str]:
    return sorted(_FACTORIES)


def get_checker(name: str) -> ContractChecker:
    """A fresh checker (one per stream: checkers keep the stream's state)."""
    factory = _FACTORIES.get(name)
    if factory is None:
        close = difflib.get_close_matches(name, _FACTORIES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(contract_names())
        raise UsageError(f"unknown contract {name!r} (known: {known}){hint}")
    return factory()
