"""Contracts by name or by file: the checker for whatever a user passes to ``--contract``.

The built-in contracts are contract files like any other, shipped under
``<schemas>/contracts/<name>.yaml`` (``schemas/`` is force-included in the wheel); a user's
own contract is a path to a ``.yaml``/``.yml``/``.json`` file.  Either is compiled once per
process (a file again when it changes) and every stream gets a fresh
:class:`~harness._contracts.engine.ContractEngine` over it.
"""

from __future__ import annotations

import difflib
import functools
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

import yaml

from harness._contracts.engine import ContractEngine
from harness._contracts.file import Contract, compile_contract, load_contract_file
from harness._core.errors import UsageError
from harness._core.schemas import BASE_URI, schemas_dir

__all__ = ["builtin_contract", "contract_names", "get_checker", "load_contract"]

_SUFFIXES: Final = (".yaml", ".yml", ".json")


@functools.cache
def _builtin_files() -> dict[str, Traversable]:
    folder = schemas_dir() / "contracts"
    return {
        entry.name.rsplit(".", 1)[0]: entry
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    }


def contract_names() -> list[str]:
    """The built-in contracts' names."""
    return sorted(_builtin_files())


@functools.cache
def builtin_contract(name: str) -> Contract:
    """The compiled built-in contract ``name`` (KeyError if there is none)."""
    entry = _builtin_files()[name]
    label = f"built-in contract {entry.name}"
    contract = compile_contract(
        yaml.safe_load(entry.read_text(encoding="utf-8")),
        label=label,
        base_uri=f"{BASE_URI}contracts/{entry.name}",
    )
    if contract.name != name:
        raise UsageError(f"{label}: /name: {contract.name!r} should be {name!r}")
    return contract


@functools.cache
def _file_contract(path: Path, resolved: Path, mtime_ns: int, size: int) -> Contract:
    # Keyed by the file's identity and version: an edited file is compiled again.
    return load_contract_file(path)


def _looks_like_path(name: str) -> bool:
    return name.lower().endswith(_SUFFIXES) or "/" in name or "\\" in name


def load_contract(name: str) -> Contract:
    """A built-in contract by name, or the contract file at a path."""
    if name in _builtin_files():
        return builtin_contract(name)
    if _looks_like_path(name):
        path = Path(name)
        try:
            stat = path.resolve().stat()
        except OSError:
            raise UsageError(f"no such contract file: {name}") from None
        return _file_contract(path, path.resolve(), stat.st_mtime_ns, stat.st_size)
    close = difflib.get_close_matches(name, _builtin_files(), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    known = ", ".join(contract_names())
    raise UsageError(
        f"unknown contract {name!r} (known: {known}; or a path to a .yaml/.yml/.json "
        f"contract file){hint}"
    )


def get_checker(name: str, *, request: object = None) -> ContractEngine:
    """A fresh checker (one per stream: checkers keep the stream's state).

    ``name`` is a built-in contract's name or the path of a contract file.  ``request`` is the
    request body sent to the endpoint, when known: a few checks depend on what was asked
    (openai-chat's usage chunk on ``stream_options.include_usage``).
    """
    return ContractEngine(load_contract(name), request)
