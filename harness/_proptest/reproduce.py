"""Reproducers: the ``stream-harness check`` and ``curl -N`` lines that replay a failure."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from harness._core.options import CheckOptions
from harness._core.redact import PUBLIC_HEADERS, REDACTED

# -- reproducers ------------------------------------------------------------------------------


__all__ = [
    "check_command",
    "curl_command",
    "json_text",
    "shown_headers",
]


def json_text(obj: Any) -> str:
    """Compact JSON for people and shells: readable non-ASCII text ("héllo", "日本語"), but
    every character that does not print (controls such as U+0080, NBSP, zero-width joiners,
    unassigned code points) escaped as ``\\uXXXX``, so that what is shown is what is sent."""
    text = json.dumps(obj, ensure_ascii=False)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(c: str) -> str:
    code = ord(c)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def check_command(target: str, inputs: Mapping[str, Any], options: CheckOptions) -> str:
    """``stream-harness check TARGET --inputs '<json>'``, shell-quoted, secrets redacted."""
    parts = ["stream-harness", "check", target, "--inputs", json_text(inputs)]
    if options.contract != "prefab":
        parts += ["--contract", options.contract]
    for name, value in shown_headers(options.headers):
        parts += ["--header", f"{name}: {value}"]
    return shlex.join(parts)


def curl_command(url: str, inputs: Mapping[str, Any], options: CheckOptions) -> str:
    """The same request as a ``curl -N`` line (secret header values redacted)."""
    parts = ["curl", "-N", "-X", "POST", url, "-H", "Content-Type: application/json"]
    for name, value in shown_headers(options.headers):
        parts += ["-H", f"{name}: {value}"]
    parts += ["-d", json_text({"inputs": inputs})]
    return shlex.join(parts)


def shown_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The user's headers as a reproducer shows them: values redacted unless public, and no
    Content-Type (the command sets it)."""
    shown = []
    for name, value in headers:
        if name.lower() == "content-type":
            continue  # the command sets it
        shown.append((name, value if name.lower() in PUBLIC_HEADERS else REDACTED))
    return shown
