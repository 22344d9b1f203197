"""stream-harness: conformance tests and load tests for streaming (SSE) endpoints.

The public API is what ``__all__`` lists; everything in underscore modules is internal.
Names are loaded on first use (PEP 562), so ``from harness import SSEDecoder`` costs the
decoder alone -- no HTTP client, no asyncio, no Hypothesis.
"""

from __future__ import annotations

import importlib as _importlib
import sys as _sys
import types as _types
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "CheckOptions": "harness._core.options",
    "CheckResult": "harness._core.session",
    "HarnessError": "harness._core.errors",
    "SSEDecoder": "harness._core.sse",
    "SSEEvent": "harness._core.sse",
    "Severity": "harness._core.rules",
    "TargetLoadError": "harness._core.errors",
    "TargetUnreachable": "harness._core.errors",
    "Threshold": "harness._core.thresholds",
    "ThresholdResult": "harness._core.thresholds",
    "Timing": "harness._core.session",
    "UsageError": "harness._core.errors",
    "Violation": "harness._core.rules",
    "assert_conforms": "harness._runners.inprocess",
    "assert_conforms_async": "harness._runners.inprocess",
    "check": "harness._runners.check",
    "evaluate": "harness._core.thresholds",
    "parse_threshold": "harness._core.thresholds",
}

__all__ = [
    "CheckOptions",
    "CheckResult",
    "HarnessError",
    "SSEDecoder",
    "SSEEvent",
    "Severity",
    "TargetLoadError",
    "TargetUnreachable",
    "Threshold",
    "ThresholdResult",
    "Timing",
    "UsageError",
    "Violation",
    "__version__",
    "assert_conforms",
    "assert_conforms_async",
    "check",
    "evaluate",
    "parse_threshold",
]

if _TYPE_CHECKING:
    from harness._core.errors import HarnessError, TargetLoadError, TargetUnreachable, UsageError
    from harness._core.options import CheckOptions
    from harness._core.rules import Severity, Violation
    from harness._core.session import CheckResult, Timing
    from harness._core.sse import SSEDecoder, SSEEvent
    from harness._core.thresholds import Threshold, ThresholdResult, evaluate, parse_threshold
    from harness._runners.check import check
    from harness._runners.inprocess import assert_conforms, assert_conforms_async


def __getattr__(name: str) -> _Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


_MODULE_DICT: _Any = vars(_types.ModuleType)["__dict__"]


class _LazyModule(_types.ModuleType):
    """``harness`` itself: ``vars(harness)`` (and so ``help``, ``doctest``, ``inspect``) sees
    the whole public API, loading it then; attribute access stays lazy."""

    @property
    def __dict__(self) -> dict[str, _Any]:  # type: ignore[override]
        namespace: dict[str, _Any] = _MODULE_DICT.__get__(self)
        for name in _EXPORTS:
            if name not in namespace:
                __getattr__(name)
        return namespace


_sys.modules[__name__].__class__ = _LazyModule
