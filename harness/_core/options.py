"""The options of one check, as one frozen value passed down explicitly.

The defaults every command shares are written here once: the CLI's flags, the configuration
file (``harness/_core/config.py``), the load runner and the Locust users all read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from harness._core.network import NetworkOptions
from harness._core.session import DEFAULT_MAX_EVENTS
from harness._core.sse import DEFAULT_MAX_EVENT_BYTES
from harness._core.thresholds import Threshold

__all__ = [
    "DEFAULT_CONTRACT",
    "DEFAULT_EXAMPLES",
    "DEFAULT_FIRST_BYTE_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_INFLIGHT",
    "DEFAULT_MAX_RETRY_WAIT",
    "DEFAULT_PROCESSES",
    "DEFAULT_RUN_TIME",
    "DEFAULT_TOTAL_TIMEOUT",
    "DEFAULT_USERS",
    "CheckOptions",
]

DEFAULT_CONTRACT: Final = "prefab"
#: Seconds from sending the request to the first byte of the response (URLs), or to the
#: first yielded item (generators).
DEFAULT_FIRST_BYTE_TIMEOUT: Final = 10.0
#: Longest silence allowed between two chunks / two yielded items, in seconds.
DEFAULT_IDLE_TIMEOUT: Final = 30.0
#: Bound on the whole run of one stream, in seconds.
DEFAULT_TOTAL_TIMEOUT: Final = 120.0
#: Longest wait honoured for a server's ``retry:`` hint before reconnecting, in seconds.
DEFAULT_MAX_RETRY_WAIT: Final = 5.0
#: Generated inputs per function in the property tests (``manifest``, the pytest suites).
DEFAULT_EXAMPLES: Final = 100
#: ``load``: concurrent streams, seconds of the run, Locust processes, and (open loop) the
#: most streams open at once.
DEFAULT_USERS: Final = 10
DEFAULT_RUN_TIME: Final = 30.0
DEFAULT_PROCESSES: Final = 1
DEFAULT_MAX_INFLIGHT: Final = 5_000


@dataclass(frozen=True, slots=True)
class CheckOptions:
    contract: str = DEFAULT_CONTRACT
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_events: int = DEFAULT_MAX_EVENTS
    first_byte_timeout: float = DEFAULT_FIRST_BYTE_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT
    #: --resume-after K: drop the connection after K events and resume with Last-Event-ID.
    resume_after: int | None = None
    max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT
    method: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    #: Function inputs: for URLs sent as ``{"inputs": ...}``, for generators passed as kwargs.
    inputs: dict[str, Any] | None = None
    #: ``--strict``: warnings fail the check too.
    strict: bool = False
    #: Timing gates (``--threshold``), evaluated on each checked stream.
    thresholds: tuple[Threshold, ...] = ()
    #: TLS trust and proxy (``--cacert``, ``--insecure``, ``--proxy``, ``--no-proxy``).
    network: NetworkOptions = field(default_factory=NetworkOptions)
