"""The options of one check, as one frozen value passed down explicitly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness._core.session import DEFAULT_MAX_EVENTS
from harness._core.sse import DEFAULT_MAX_EVENT_BYTES
from harness._core.thresholds import Threshold

__all__ = ["CheckOptions"]


@dataclass(frozen=True, slots=True)
class CheckOptions:
    contract: str = "prefab"
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_events: int = DEFAULT_MAX_EVENTS
    #: Seconds from sending the request to the first byte of the response (URLs), or to the
    #: first yielded item (generators).
    first_byte_timeout: float = 10.0
    #: Longest silence allowed between two chunks / two yielded items.
    idle_timeout: float = 30.0
    #: Bound on the whole run of one stream.
    total_timeout: float = 120.0
    #: --resume-after K: drop the connection after K events and resume with Last-Event-ID.
    resume_after: int | None = None
    #: Longest wait honoured for a server's ``retry:`` hint before reconnecting, in seconds.
    max_retry_wait: float = 5.0
    method: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    #: Function inputs: for URLs sent as ``{"inputs": ...}``, for generators passed as kwargs.
    inputs: dict[str, Any] | None = None
    #: Timing gates (``--threshold``), evaluated on each checked stream.
    thresholds: tuple[Threshold, ...] = ()
