"""Serve one app by hand: ``PYTHONPATH=tests python -m openapi_apps llm_debug [PORT]``.

Prints ``<name> at http://127.0.0.1:<port>`` and serves until Ctrl-C (loopback only), so the
tool can be tried on a target as a user would: ``stream-harness openapi <url>/openapi.json``.
"""

from __future__ import annotations

import sys

import uvicorn

from openapi_apps import APPS


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in APPS:
        print(f"usage: python -m openapi_apps {{{','.join(APPS)}}} [PORT]", file=sys.stderr)
        return 2
    port = int(argv[1]) if len(argv) > 1 else 8000
    print(f"{argv[0]} at http://127.0.0.1:{port}", flush=True)
    uvicorn.run(APPS[argv[0]].app, host="127.0.0.1", port=port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
