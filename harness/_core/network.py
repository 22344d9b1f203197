"""How a request reaches its target: TLS trust and the proxy, decided once, sans-I/O.

``check``, ``manifest --url`` and ``load`` take the same flags and decide the same way, so one
URL cannot pass one command and be unreachable in the other:

    --cacert FILE   trust the CA certificates in FILE (PEM) instead of the system store
    --insecure      do not verify the server's certificate at all
    (neither)       the system store, which ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` override

    --proxy URL     send every request through this http:// proxy (CONNECT for https)
    --no-proxy      ignore HTTP_PROXY / HTTPS_PROXY / ALL_PROXY
    (neither)       the environment's proxy for the URL's scheme, unless NO_PROXY names the
                    host; loopback hosts (localhost, 127.0.0.0/8, ::1) never go through an
                    environment proxy (a proxy cannot reach this machine's loopback)

This module decides (strings in, a URL or None out) and makes the SSL context with the ``ssl``
module its caller passes (``harness._runners.tls``, ``harness._load._dial``); they dial.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from harness._core.errors import UsageError
from harness._core.urls import http_url

__all__ = ["NetworkOptions", "choose_proxy", "ssl_context", "tls_failure", "user_agent"]


@dataclass(frozen=True, slots=True)
class NetworkOptions:
    #: PEM file of CA certificates to trust (``--cacert``).
    cacert: str | None = None
    #: Skip certificate verification (``--insecure``).
    insecure: bool = False
    #: ``--proxy URL``: every request through it.
    proxy: str | None = None
    #: ``--no-proxy``: ignore the environment's proxies.
    no_proxy: bool = False

    def __post_init__(self) -> None:
        if self.cacert is not None and self.insecure:
            raise UsageError("give either --cacert or --insecure, not both")
        if self.proxy is not None and self.no_proxy:
            raise UsageError("give either --proxy or --no-proxy, not both")
        if self.proxy is not None:
            check_proxy_url(self.proxy)


def user_agent() -> str:
    """What every request says it is: ``stream-harness/<version>``."""
    from harness import __version__

    return f"stream-harness/{__version__}"


def tls_failure(e: BaseException) -> str:
    """A TLS handshake failure (an ``ssl.SSLError``) in words, with the flag that changes it."""
    verify = getattr(e, "verify_message", None)
    if verify:
        return f"TLS failed: certificate verify failed: {verify} (--cacert trusts its CA)"
    return f"TLS failed: {getattr(e, 'reason', None) or e or 'handshake failed'}"


def ssl_context(net: NetworkOptions, ssl: ModuleType) -> Any:
    """The client ``ssl.SSLContext`` for ``net``, made with the ``ssl`` module passed in (the
    standard one, or gevent's in a Locust process; this layer imports no I/O library), so
    ``check`` and ``load`` trust exactly the same servers.  UsageError if ``--cacert`` cannot
    be read.  Without ``--cacert`` it is the system store -- which OpenSSL lets
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` replace -- and certifi's where the system has none."""
    try:
        ctx = ssl.create_default_context(cafile=net.cacert)
    except (OSError, ssl.SSLError) as e:
        why = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        if isinstance(e, FileNotFoundError):
            raise UsageError(f"--cacert {net.cacert}: no such file") from None
        raise UsageError(f"--cacert {net.cacert}: not a PEM CA certificate ({why})") from None
    if net.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif net.cacert is None and not ctx.cert_store_stats().get("x509_ca"):
        import certifi

        ctx.load_verify_locations(cafile=certifi.where())
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def check_proxy_url(proxy: str) -> None:
    parts = http_url(proxy, "proxy URL")
    if parts.scheme.lower() != "http":
        raise UsageError(f"only http:// proxies are supported, got {parts.scheme}:// ({proxy!r})")


def choose_proxy(url: str, net: NetworkOptions, environ: Mapping[str, str]) -> str | None:
    """The proxy URL a request to ``url`` goes through, or None for a direct connection."""
    if net.no_proxy:
        return None
    if net.proxy:
        return net.proxy
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    scheme = parts.scheme.lower()
    proxy = _env(environ, f"{scheme}_proxy") or _env(environ, "all_proxy")
    if not proxy or _is_loopback(host) or _bypassed(host, _env(environ, "no_proxy") or ""):
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy  # curl's reading of HTTP_PROXY=host:port
    var = f"{scheme.upper()}_PROXY"
    try:
        check_proxy_url(proxy)
    except UsageError as e:
        raise UsageError(f"{var} / ALL_PROXY: {e} (--no-proxy ignores it)") from None
    return proxy


def _env(environ: Mapping[str, str], name: str) -> str | None:
    # Lower case first, as curl does (and HTTP_PROXY upper case is unsafe under CGI).
    return environ.get(name) or environ.get(name.upper()) or None


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bypassed(host: str, no_proxy: str) -> bool:
    """NO_PROXY as curl reads it: ``*``, host names (a name covers its subdomains, a leading
    dot optional), IP addresses and CIDR ranges, separated by commas or spaces."""
    for entry in no_proxy.replace(",", " ").split():
        entry = entry.lower().strip()
        if entry == "*":
            return True
        name = entry.lstrip(".").split(":")[0] if entry.count(":") <= 1 else entry
        if host == name or host.endswith("." + name):
            return True
        try:
            if ipaddress.ip_address(host.strip("[]")) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False
