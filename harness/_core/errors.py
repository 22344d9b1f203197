"""The exceptions the harness raises, kept apart by what the user must do about them.

    HarnessError                 base; str(e) is a one-line message for the user
    ├── UsageError               bad flags, bad JSON in --inputs, missing file   -> exit 2
    │   └── TargetLoadError      a module:function that cannot be imported/found -> exit 2
    └── TargetUnreachable        connection refused, DNS failure, TLS failure    -> exit 3

Contract failures are not exceptions: they are violations in a result (exit 1).
"""

from __future__ import annotations

__all__ = ["HarnessError", "TargetLoadError", "TargetUnreachable", "UsageError"]


class HarnessError(Exception):
    exit_code = 2


class UsageError(HarnessError):
    exit_code = 2


class TargetLoadError(UsageError):
    exit_code = 2


class TargetUnreachable(HarnessError):
    exit_code = 3
