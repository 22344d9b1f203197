"""The one place a user's URL is parsed: an http(s) URL, or a one-line usage error."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

from harness._core.errors import UsageError

__all__ = ["http_url"]


def http_url(url: str, what: str = "URL") -> SplitResult:
    """``url`` split, when it is a well-formed http:// or https:// URL with a host; otherwise
    :class:`UsageError` (``urlsplit`` itself raises ValueError on e.g. ``http://[::1``)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError as e:
        raise UsageError(f"invalid {what} {url!r}: {e}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UsageError(f"expected an http:// or https:// {what}, got {url!r}")
    if not parts.hostname:
        raise UsageError(f"invalid {what} {url!r}: no host")
    return parts
