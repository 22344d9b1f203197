"""``stream-harness contracts``: the built-in contracts, one line each; or validate files.

stream-harness contracts                      # name and summary of every built-in
stream-harness contracts --format json        # with types, order and source
stream-harness contracts ./my-contract.yaml   # load and compile: ok, or exit 2 naming
                                              #   the file and the JSON pointer at fault
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from harness._contracts.file import Contract
from harness._contracts.registry import builtin_contract, contract_names, load_contract

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "contracts",
        help="list the built-in contracts (or validate contract files)",
        description="List the built-in contracts, one line each, or load and validate the "
        "given contract files (a problem is reported with the file and the JSON pointer of "
        "the problem, exit 2). Pass a name or a file to `check --contract`.",
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="contract files to validate instead")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=_run)


def _describe(contract: Contract) -> dict[str, Any]:
    return {
        "name": contract.name,
        "summary": contract.summary,
        "types": list(contract.types),
        "order": contract.order.pattern,
        "source": contract.source,
    }


def _run(ns: argparse.Namespace) -> int:
    names: list[str] = ns.files or contract_names()
    contracts = [load_contract(n) if ns.files else builtin_contract(n) for n in names]
    if ns.format == "json":
        sys.stdout.write(json.dumps([_describe(c) for c in contracts], indent=2) + "\n")
        return 0
    if ns.files:
        for name, c in zip(names, contracts, strict=True):
            sys.stdout.write(f"{name}: ok — contract {c.name}, types {', '.join(c.types)}\n")
        return 0
    width = max(len(c.name) for c in contracts)
    for c in contracts:
        sys.stdout.write(f"{c.name:<{width}}  {c.summary}\n")
    return 0
