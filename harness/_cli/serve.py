"""``stream-harness serve MANIFEST --module PATH``: the reference gateway on uvicorn.

Loads the manifest (an invalid one is reported rule by rule, exit 1: there is nothing sound to
serve), imports the module in this process (exit 2 if it cannot be), binds the socket itself so
that ``--port 0`` works and the line on stderr names the real address, then serves until
interrupted.  The gateway itself is :mod:`harness._gateway.server`.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import Any

from harness._cli.flags import EXIT_OK, EXIT_VIOLATION, _positive_float, _positive_int
from harness._core.errors import UsageError

__all__ = ["register"]


def register(sub: Any) -> None:
    s = sub.add_parser(
        "serve",
        help="serve a prefab's functions over SSE (the reference gateway)",
        description="Serve the functions of a prefab manifest over SSE at POST /invoke/{name} "
        '(body {"inputs": {...}}), as the prefab gateway does: to try them with curl, a browser '
        "or a load test. The module is imported in this process.",
    )
    s.add_argument("manifest", type=Path, help="path to prefab-manifest.json")
    s.add_argument(
        "--module", required=True, help="the functions' module: src/main.py or a dotted name"
    )
    s.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)"
    )
    s.add_argument(
        "--port", type=_port, default=8000, help="0 picks a free port (default: %(default)s)"
    )
    s.add_argument(
        "--heartbeat",
        type=_positive_float,
        default=15.0,
        metavar="S",
        help="send a ': ping' comment after S seconds without a byte (default: %(default)s)",
    )
    s.add_argument(
        "--retry-ms",
        type=_positive_int,
        default=3000,
        metavar="MS",
        help="the retry: hint at the start of each stream (default: %(default)s)",
    )
    s.add_argument(
        "--send-timestamps",
        action="store_true",
        help="precede each event with ': sent=<unix time>', the moment the gateway wrote it",
    )
    s.add_argument(
        "--threads",
        type=_positive_int,
        default=64,
        metavar="N",
        help="threads for sync generators: how many can be working at once (default: %(default)s)",
    )
    s.add_argument(
        "--log-level",
        choices=["critical", "error", "warning", "info", "debug"],
        default="info",
    )
    s.set_defaults(run=_cmd_serve)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535, got {text!r}")
    return value


def _cmd_serve(ns: argparse.Namespace) -> int:
    from harness._contracts.manifest import load_manifest
    from harness._gateway.server import GatewayOptions, build_app

    manifest, found = load_manifest(ns.manifest)
    for v in found:
        sys.stderr.write(f"stream-harness serve: {v.severity.value} {v.rule}: {v.message}\n")
    if manifest is None:
        sys.stderr.write("stream-harness serve: the manifest is invalid; nothing served\n")
        return EXIT_VIOLATION
    options = GatewayOptions(
        heartbeat=ns.heartbeat,
        retry_ms=ns.retry_ms,
        send_timestamps=ns.send_timestamps,
        threads=ns.threads,
    )
    app = build_app(manifest, ns.module, options)
    sock = _bind(ns.host, ns.port)
    url = _url(sock)
    n = len(manifest.functions)
    sys.stderr.write(
        f"stream-harness serve: {n} function{'s' if n != 1 else ''} from {ns.manifest} "
        f"at {url}  (POST {url}/invoke/{{name}}, GET {url}/functions)\n"
    )
    sys.stderr.flush()
    _run(app, sock, ns.log_level)
    return EXIT_OK


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UsageError(f"--host {host!r}: {e.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _run(app: Any, sock: socket.socket, log_level: str) -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level=log_level,
        timeout_graceful_shutdown=5,
        ws="none",
        lifespan="on",
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
