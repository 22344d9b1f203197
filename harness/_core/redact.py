"""Keep secrets out of everything the harness prints or writes."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "PUBLIC_HEADERS",
    "REDACTED",
    "SECRET_HEADERS",
    "redact_headers",
    "redact_json",
    "redact_text",
    "redact_url",
    "scrub_bytes",
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
#: Secrets shorter than this are not secrets we can find: one or two characters occur
#: everywhere in a report.  From three characters on every value is scrubbed.
MIN_SECRET = 3
#: Below this length a value is replaced only where it stands alone (not inside a longer word
#: or number), so a 3-character token does not eat the report's own text.
_WHOLE_WORD_BELOW = 6
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
    """Replace every occurrence of each secret value (e.g. header values) in ``text``; a short
    one (under 6 characters) only where it stands alone, not inside a longer word."""
    for s in _ordered(secrets):
        if len(s) >= _WHOLE_WORD_BELOW:
            text = text.replace(s, REDACTED)
        elif s in text:
            text = _alone(s).sub(REDACTED, text)
    return text


def redact_json(value: Any, secrets: Sequence[str]) -> Any:
    """``value`` (JSON-able data) with every secret replaced in every string, keys included."""
    if not secrets:
        return value
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, list | tuple):
        return [redact_json(v, secrets) for v in value]
    if isinstance(value, dict):
        return {redact_json(k, secrets): redact_json(v, secrets) for k, v in value.items()}
    return value


def scrub_bytes(data: bytes, secrets: Sequence[str]) -> bytes:
    """:func:`redact_text` for raw bytes (a recorded stream, a file already written)."""
    mark = REDACTED.encode()
    for s in _ordered(secrets):
        b = s.encode()
        if len(s) >= _WHOLE_WORD_BELOW:
            data = data.replace(b, mark)
        elif b in data:
            data = re.compile(_alone(s).pattern.encode()).sub(mark, data)
    return data


def _ordered(secrets: Sequence[str]) -> list[str]:
    """Each secret in every form a report writes it -- as given, JSON-escaped (both ways) and
    HTML-escaped -- longest first, so no fragment of a longer one is left.

    >>> _ordered(['a"&b'])
    ['a&quot;&amp;b', 'a\\\\"&b', 'a"&b']
    """
    forms = set()
    for s in secrets:
        if len(s) >= MIN_SECRET:
            forms |= {
                s,
                json.dumps(s)[1:-1],
                json.dumps(s, ensure_ascii=False)[1:-1],
                html.escape(s),
            }
    return sorted(forms, key=lambda f: (-len(f), f))


def _alone(secret: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])")


def secret_values(headers: Sequence[tuple[str, str]], url: str | None = None) -> tuple[str, ...]:
    """Every value to scrub from output and artifacts, longest first so no fragment is left.

    Each header value the user passed (but for harmless ones such as ``Accept``), however short
    (from MIN_SECRET characters), and its token-like parts (``Bearer X`` and ``a=X; b=Y`` are
    often echoed in part); the password and token-like query parameter values of ``url``.
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
    return tuple(sorted((f for f in found if len(f) >= MIN_SECRET), key=len, reverse=True))
