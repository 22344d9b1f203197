"""Certificates made in the test (the openssl command line: no trustme here), and a CONNECT /
forwarding HTTP proxy of our own on loopback that counts what it carried.

    certs(tmp)        a CA, and a server certificate it signed for 127.0.0.1 and localhost
    server_context()  an SSL server context with that certificate
    FakeProxy         ``with FakeProxy(upstream) as proxy:`` -- http://127.0.0.1:<port>;
                      CONNECT host:port opens a tunnel, an absolute-form request is forwarded.
                      Every host name is sent to ``upstream`` (host, port) when given, so a
                      test can use a name no DNS knows and prove the proxy did the reaching.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

__all__ = ["Certs", "FakeProxy", "certs", "server_context"]


@dataclass(frozen=True)
class Certs:
    ca: Path
    cert: Path
    key: Path


def certs(tmp: Path) -> Certs:
    """A CA and a server certificate for 127.0.0.1/localhost, signed by it (openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed (Debian package 'openssl')")
    ca_key, ca, key, csr, cert = (
        tmp / n for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem")
    )
    ext = tmp / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
        "-days", "2", "-subj", "/CN=stream-harness test CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=localhost")  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return Certs(ca, cert, key)


def server_context(c: Certs) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(c.cert), str(c.key))
    return ctx


class FakeProxy:
    """A threaded HTTP proxy: CONNECT tunnels and absolute-form forwarding, counted."""

    def __init__(self, upstream: tuple[str, int] | None = None) -> None:
        self.upstream = upstream
        self.tunnels = 0
        self.forwarded = 0
        self.targets: list[str] = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(256)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = False

    def __enter__(self) -> FakeProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop = True
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _where(self, host: str, port: int) -> tuple[str, int]:
        return self.upstream or (host, port)

    def _serve(self, client: socket.socket) -> None:
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                data = client.recv(65536)
                if not data:
                    return
                head += data
            line, _, rest = head.partition(b"\r\n")
            method, target, _version = line.decode("latin-1").split(" ", 2)
            self.targets.append(f"{method} {target}")
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = socket.create_connection(self._where(host, int(port)), timeout=10)
                self.tunnels += 1
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                extra = rest.partition(b"\r\n\r\n")[2]
                if extra:
                    upstream.sendall(extra)
            else:
                u = urlsplit(target)
                upstream = socket.create_connection(
                    self._where(u.hostname or "", u.port or 80), timeout=10
                )
                self.forwarded += 1
                path = (u.path or "/") + (f"?{u.query}" if u.query else "")
                upstream.sendall(f"{method} {path} {_version}\r\n".encode() + rest)
            self._pipe(client, upstream)
        except OSError:
            pass
        finally:
            client.close()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        def one_way(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        t = threading.Thread(target=one_way, args=(b, a), daemon=True)
        t.start()
        one_way(a, b)
        t.join(30)
        b.close()
