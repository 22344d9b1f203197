"""Files a load run writes: atomically (readers never see half a file), secrets scrubbed.

The Locust master writes the verdict and the report data with these when it quits -- perhaps
because someone pressed Ctrl-C, which is exactly when a half-written file would be left.  The
runner then scrubs Locust's own files (CSV, HTML, log), which quote failure messages a server
may have filled with what it was sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness._core.errors import UsageError
from harness._core.redact import scrub_bytes
from harness._report.write import atomic_write

__all__ = ["read_bodies", "scrub_file", "write_bytes", "write_json"]


def scrub_file(path: Path, secrets: Sequence[str]) -> bool:
    """Replace every secret in the file -- as written, JSON-escaped and HTML-escaped, the forms
    Locust's CSV and HTML report use; True if anything was replaced."""
    data = path.read_bytes()
    scrubbed = scrub_bytes(data, secrets)
    if scrubbed == data:
        return False
    write_bytes(path, scrubbed)
    return True


def write_json(path: str | Path, value: Any, indent: int | None = 2) -> None:
    """Write ``value`` as JSON, atomically."""
    write_bytes(path, (json.dumps(value, indent=indent) + "\n").encode())


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write atomically (temporary file, then rename), as every report file is."""
    atomic_write(Path(path), data)


def read_bodies(path: str | Path) -> list[bytes]:
    """``--bodies FILE.jsonl``: one JSON request body per line (blank lines skipped), each
    sent as written; UsageError naming the line that is not JSON."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"--bodies {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--bodies {path}: not UTF-8 text") from None
    bodies = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except ValueError as e:
            raise UsageError(f"--bodies {path} line {n}: not JSON ({e})") from None
        bodies.append(line.strip().encode())
    if not bodies:
        raise UsageError(f"--bodies {path}: no request body in it (one JSON value per line)")
    return bodies
