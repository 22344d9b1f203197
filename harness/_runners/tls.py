"""The SSL context ``check`` and ``manifest --url`` verify servers with: the one
``harness._core.network.ssl_context`` makes (``load`` gets the same from it)."""

from __future__ import annotations

import ssl

from harness._core import network
from harness._core.network import NetworkOptions

__all__ = ["ssl_context"]


def ssl_context(net: NetworkOptions) -> ssl.SSLContext:
    """A client context for ``net``; UsageError if ``--cacert`` cannot be read."""
    ctx: ssl.SSLContext = network.ssl_context(net, ssl)
    return ctx
