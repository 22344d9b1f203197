"""The flags and helpers every command shares, in one place: the commands (``main.py``'s
``check`` and ``rules``, one module each for the others) import them from here, so no command
imports ``main`` and ``main`` imports the commands only to register them.

A flag that is also a setting (``harness/_core/config.py``) has no argparse default: not given,
it is None, and ``apply_config`` fills it from the file, the environment or the default.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from harness._core.config import SETTINGS, positive_float, positive_int
from harness._core.errors import UsageError
from harness._core.network import NetworkOptions

if TYPE_CHECKING:
    from harness._core.thresholds import Threshold

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "EXIT_VIOLATION",
    "add_network_options",
    "add_report_options",
    "add_stream_limit_options",
    "add_strict_option",
    "add_threshold_option",
    "add_timeout_options",
    "announce_report",
    "default",
    "flag_type",
    "network",
    "report_dir",
    "stream_limits",
    "thresholds",
]

EXIT_OK, EXIT_VIOLATION, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_INTERRUPTED = 130


_T = TypeVar("_T")


def flag_type(parse: Callable[[object], _T]) -> Callable[[str], _T]:
    """A configuration parser as an argparse ``type``: a flag and its key in the file accept
    the same values, with the same messages."""

    def convert(text: str) -> _T:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = parse.__name__
    return convert


_positive_float = flag_type(positive_float)
_positive_int = flag_type(positive_int)


def default(key: str, unit: str = "") -> str:
    """For help texts: a setting's default and how else to set it."""
    value = SETTINGS[key].default
    shown = f"{value:g}" if isinstance(value, float) else str(value).lower()
    return f"default: {shown}{unit}; or {key} in stream-harness.toml"


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c in name for c in " \t\r\n"):
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {name.strip()!r}…")
    return name.strip(), value.strip()


def _load_json(flag: str, text: str) -> Any:
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise UsageError(f"{flag}: cannot read {text[1:]}: {e.strerror or e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(
            f"{flag} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None


def _read(ref: str) -> str:
    with open(ref[1:], encoding="utf-8") as f:
        return f.read()


def add_timeout_options(p: argparse.ArgumentParser, per: str = "") -> None:
    """The three timeouts of one stream, shared by every command that reads streams (the same
    flags, defaults and meaning everywhere: they are public interface).  No argparse default:
    a flag not given is None, filled from the configuration by :func:`apply_config`."""
    suffix = f", {per}" if per else ""
    p.add_argument(
        "--first-byte-timeout", type=_positive_float, metavar="S",
        help=f"seconds to the first byte of the response / the first item "
        f"({default('first-byte-timeout')}{suffix})",
    )  # fmt: skip
    p.add_argument(
        "--idle-timeout", type=_positive_float, metavar="S",
        help=f"longest silence between chunks / items ({default('idle-timeout')}{suffix})",
    )  # fmt: skip
    p.add_argument(
        "--total-timeout", type=_positive_float, metavar="S",
        help=f"bound on one stream ({default('total-timeout')}{suffix})",
    )  # fmt: skip


def add_stream_limit_options(p: argparse.ArgumentParser, per: str = "") -> None:
    """The timeouts and the size bounds of one stream (``check``, ``manifest``)."""
    add_timeout_options(p, per)
    p.add_argument(
        "--max-events", type=_positive_int, metavar="N", help=f"({default('max-events')})"
    )
    p.add_argument(
        "--max-event-bytes",
        type=_positive_int,
        metavar="N",
        help=f"({default('max-event-bytes')})",
    )


def stream_limits(ns: argparse.Namespace) -> dict[str, Any]:
    """The CheckOptions fields the stream-limit flags set."""
    return {
        "max_event_bytes": ns.max_event_bytes,
        "max_events": ns.max_events,
        "first_byte_timeout": ns.first_byte_timeout,
        "idle_timeout": ns.idle_timeout,
        "total_timeout": ns.total_timeout,
    }


def add_network_options(p: argparse.ArgumentParser) -> None:
    """TLS trust and proxy, the same in every command that makes requests (check, manifest
    --url, load): ``harness/_core/network.py`` says how they decide."""
    p.add_argument(
        "--cacert", metavar="FILE",
        help="trust the CA certificates in FILE (PEM) instead of the system store "
        "(SSL_CERT_FILE sets the store)",
    )  # fmt: skip
    p.add_argument(
        "--insecure", action="store_true", help="do not verify the server's TLS certificate"
    )
    p.add_argument(
        "--proxy", metavar="URL",
        help="send requests through this http:// proxy (default: HTTP(S)_PROXY, NO_PROXY)",
    )  # fmt: skip
    p.add_argument(
        "--no-proxy", action="store_true", help="ignore HTTP_PROXY / HTTPS_PROXY / ALL_PROXY"
    )


def network(ns: argparse.Namespace) -> NetworkOptions:
    return NetworkOptions(
        cacert=ns.cacert, insecure=ns.insecure, proxy=ns.proxy, no_proxy=ns.no_proxy
    )


def add_threshold_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="EXPR",
        help="a timing gate, e.g. 'ttfb_ms<500' or 'inter_event_ms.p99<2000' (repeatable)",
    )


def thresholds(ns: argparse.Namespace) -> tuple[Threshold, ...]:
    from harness._core.thresholds import parse_threshold

    return tuple(parse_threshold(text) for text in ns.threshold)


def add_strict_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--strict",
        action="store_true",
        default=None,  # not given: the configuration's (apply_config)
        help="warnings fail too (exit 1), e.g. an error event without error_code "
        f"({default('strict')})",
    )


def add_report_options(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument(
        "--report-dir",
        metavar="DIR",
        help=f"where to write the report (default: reports/<timestamp>-{command}/)",
    )
    p.add_argument("--no-report", action="store_true", help="write no report files")


def report_dir(ns: argparse.Namespace, command: str) -> Path | None:
    """The directory the command's report goes to, or None with --no-report."""
    from harness._report.write import default_report_dir

    if ns.no_report:
        return None
    return Path(ns.report_dir) if ns.report_dir else default_report_dir(command)


def announce_report(path: Path | None) -> None:
    if path is not None:
        sys.stderr.write(f"report: {path / 'report.html'}\n")
