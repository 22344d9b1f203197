"""Data shipped with the package: the examples, the locustfiles and the schemas.

A wheel carries them inside the package, at ``harness/_data/<name>`` (pyproject force-includes
them); a source checkout (editable install) has them at the repository's top level.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["data_dir"]

_PACKAGE = Path(__file__).resolve().parent.parent  # harness/


def data_dir(name: str) -> Path:
    """The directory ``name`` (``examples``, ``loadtests``, ``schemas``) of this installation."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"stream-harness is installed without its {name}/ directory "
        f"(looked in {_PACKAGE / '_data' / name} and {_PACKAGE.parent / name}); reinstall it"
    )
