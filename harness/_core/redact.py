"""Keep secrets out of everything the harness prints or writes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "PUBLIC_HEADERS",
    "REDACTED",
    "SECRET_HEADERS",
    "redact_headers",
    "redact_text",
    "redact_url",
    "secret_values",
]

REDACTED = "[REDACTED]"
#: Header names whose values are always secret (compared lower-case).
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"}
)
#: Header values the user passes are secret unless the header is one of these.
PUBLIC_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "content-type",
        "last-event-id",
        "user-agent",
    }
)
_SECRET_PARAM = re.compile(r"(token|key|secret|password|passwd|auth|sig|signature|session)", re.I)


def redact_url(url: str) -> str:
    """The URL with any password and token-like query parameter values replaced."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{host}" if ":" in userinfo else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, REDACTED if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="[]"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_headers(
    headers: tuple[tuple[str, str], ...], extra_secret: frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    secret = SECRET_HEADERS | {h.lower() for h in extra_secret}
    return [(k, REDACTED if k.lower() in secret else v) for k, v in headers]


def redact_text(text: str, secrets: Sequence[str]) -> str:
    """Replace every occurrence of each secret value (e.g. header values) in ``text``."""
    for s in secrets:
        if len(s) >= 4:
            text = text.replace(s, REDACTED)
    return text


def secret_values(headers: Sequence[tuple[str, str]], url: str | None = None) -> tuple[str, ...]:
    """Every value to scrub from output and artifacts, longest first so no fragment is left.

    Each header value the user passed (but for harmless ones such as ``Accept``) and its
    token-like parts (``Bearer X`` and ``a=X; b=Y`` are often echoed in part); the password
    and token-like query parameter values of ``url``.
    """
    found: set[str] = set()
    for name, value in headers:
        if name.lower() in PUBLIC_HEADERS:
            continue
        found.add(value.strip())
        found.update(p for p in re.split(r"[\s;,=]+", value) if len(p) >= 8)
    if url:
        parts = urlsplit(url)
        if parts.password:
            found.add(parts.password)
        found.update(
            v for k, v in parse_qsl(parts.query, keep_blank_values=True) if _SECRET_PARAM.search(k)
        )
    return tuple(sorted((f for f in found if len(f) >= 4), key=len, reverse=True))
