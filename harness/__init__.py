"""stream-harness: conformance tests and load tests for streaming (SSE) endpoints.

The public API is what ``__all__`` lists; everything in underscore modules is internal.
"""

from harness._assert import assert_conforms, assert_conforms_async
from harness._check import check
from harness._errors import HarnessError, TargetLoadError, TargetUnreachable, UsageError
from harness._options import CheckOptions
from harness._rules import Severity, Violation
from harness._session import CheckResult, Timing
from harness._sse import SSEDecoder, SSEEvent
from harness._thresholds import Threshold, ThresholdResult, evaluate, parse_threshold

__version__ = "0.1.0"

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
