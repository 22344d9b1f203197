"""``check``: one stream from a URL, a generator or a recording, against one contract."""

from __future__ import annotations

import json
import re
from enum import Enum
from pathlib import Path

from harness._contracts.registry import get_checker
from harness._core.errors import UsageError
from harness._core.options import CheckOptions
from harness._core.redact import redact_url, secret_values
from harness._core.session import CheckResult
from harness._core.thresholds import evaluate, metrics_from_check
from harness._core.urls import http_url

__all__ = ["TargetKind", "check", "classify_target"]

_FUNCTION = re.compile(r"^(?P<module>.+):(?P<function>[A-Za-z_][A-Za-z0-9_]*)$")


class TargetKind(Enum):
    URL = "url"
    GENERATOR = "generator"
    RECORDING = "recording"


def classify_target(target: str) -> TargetKind:
    """Tell a URL, a ``module:function`` and a recorded ``.sse`` file apart."""
    low = target.lower()
    if low.startswith(("http://", "https://")):
        http_url(target)
        return TargetKind.URL
    if "://" in target:
        scheme = target.split("://", 1)[0]
        raise UsageError(f"unsupported URL scheme {scheme!r}: only http:// and https://")
    m = _FUNCTION.match(target)
    if m and not Path(target).is_file():
        return TargetKind.GENERATOR
    path = Path(target)
    if path.is_file():
        return TargetKind.RECORDING
    if target.lower().endswith((".sse", ".ndjson", ".jsonl")):
        raise UsageError(f"no such file: {target}")
    raise UsageError(
        f"cannot tell what {target!r} is: give a URL (https://...), a module:function "
        "(my_prefab.py:batch_process or pkg.module:fn) or a recorded .sse / .ndjson file"
    )


def check(target: str, options: CheckOptions) -> CheckResult:
    """Run one check. Raises HarnessError subclasses for what stops the harness itself."""
    kind = classify_target(target)
    _validate(kind, options)
    checker = get_checker(
        options.contract, request=_request_body(options) if kind is TargetKind.URL else None
    )
    if kind is TargetKind.URL:
        from harness._runners.http import run_url

        result = run_url(target, options, checker)
    elif kind is TargetKind.GENERATOR:
        from harness._runners.gen import run_generator

        result = run_generator(target, options, checker)
    else:
        from harness._runners.file import run_file

        result = run_file(Path(target), options, checker)
    result.target = redact_url(target) if kind is TargetKind.URL else target
    result.redact(secret_values(options.headers, target))
    if options.strict:
        result.make_strict()
    if options.thresholds:
        metrics = metrics_from_check(result, options.thresholds)
        result.thresholds = evaluate(options.thresholds, metrics)
    return result


def _request_body(options: CheckOptions) -> object:
    """The JSON body sent, for contracts whose checks depend on what was asked (openai-chat's
    usage chunk follows ``stream_options.include_usage``)."""
    if options.body is not None:
        return json.loads(options.body)
    return None if options.inputs is None else {"inputs": options.inputs}


def _validate(kind: TargetKind, options: CheckOptions) -> None:
    if kind is not TargetKind.URL:
        url_only = {
            "--header": bool(options.headers),
            "--method": options.method is not None,
            "--body": options.body is not None,
            "--resume-after": options.resume_after is not None,
        }
        given = [flag for flag, used in url_only.items() if used]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise UsageError(f"{', '.join(given)} {verb} only to URL targets")
    if kind is TargetKind.RECORDING and options.inputs is not None:
        raise UsageError("--inputs does not apply to a recorded .sse file")
    if kind is TargetKind.URL and options.inputs is not None and options.body is not None:
        raise UsageError("give either --inputs or --body, not both")
