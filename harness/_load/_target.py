"""Where a load test streams from: an http(s) URL split once, with no gevent in sight.

Kept apart from ``_client`` (which imports gevent) so that the runner and the CLI, which run in
the user's process, can validate a URL without importing gevent.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness._core.urls import http_url

__all__ = ["Target", "parse_target"]


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    #: Path and query, what goes on the request line.
    path: str

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def authority(self) -> str:
        default = 443 if self.tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_target(url: str) -> Target:
    """Split an http(s) URL; raises UsageError for anything else."""
    parts = http_url(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, parts.hostname or "", port, path)
