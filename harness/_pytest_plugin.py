r"""The pytest plugin (entry point ``pytest11``): options that point conformance suites at a
target, and fixtures that hand the target to tests.

    pytest --pyargs suites --stream-url https://staging.example \
        --stream-manifest prefab-manifest.json                    # a prefab gateway
    pytest --pyargs suites --stream-url https://api.example/chat/stream \
        --stream-contract openai-chat --stream-body=@request.json  # one streaming endpoint
    pytest --pyargs suites --stream-openapi http://127.0.0.1:8000/openapi.json  # an API

Fixtures (each skips the test, with the reason, when its option was not given):

    stream_url            --stream-url: with --stream-manifest the gateway's base URL (functions
                          at {url}/invoke/{name}), without it the one endpoint checked
    stream_manifest_path  the manifest file
    stream_manifest       the loaded Manifest (skips if the manifest is invalid: the manifest
                          suite reports that, once)
    stream_contract       the contract name (default prefab)
    stream_options        CheckOptions with the contract, --stream-header, --stream-timeout and
                          --stream-strict
    stream_check          stream_check("chat", {"messages": [...]}) -> CheckResult
    stream_settings       the settings by key: options, else the configuration, else defaults

The same configuration as the command line applies (``stream-harness.toml`` or
``[tool.stream-harness]`` in pyproject.toml in the directory pytest runs from, then
``STREAM_HARNESS_*`` variables, then these options; a ``[pytest]`` table holds settings for the
suites only): ``contract``, the three timeouts, ``strict``, ``examples`` and ``seed``.
Malformed ``--stream-body``, ``--stream-method`` or ``--stream-header`` values, and request
options given with ``--stream-manifest``, are usage errors before anything is collected.
``--stream-openapi`` reads its document at configure time (:func:`openapi_plan`): a broken one
is a usage error, one that cannot be reached exit 3.

Thin by design: this module imports only pytest.  The library, httpx and Hypothesis are
imported by the fixtures and the suites that use them, so installing stream-harness costs
nothing to a pytest run that does not use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness._contracts.manifest import Manifest
    from harness._core.options import CheckOptions
    from harness._core.session import CheckResult
    from harness._proptest.openapi import OpenAPIPlan

#: The suites bound one stream tighter than ``check`` does, unless configured otherwise.
SUITE_TOTAL_TIMEOUT = 60.0

__all__ = [
    "check_options",
    "endpoint_request",
    "in_pytest",
    "openapi_plan",
    "pytest_addoption",
    "pytest_configure",
    "pytest_report_header",
    "stream_check",
    "stream_contract",
    "stream_manifest",
    "stream_manifest_path",
    "stream_options",
    "stream_settings",
    "stream_url",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stream-harness", "stream-harness conformance suites")
    group.addoption(
        "--stream-url",
        help="with --stream-manifest: the gateway's base URL (…/invoke/{name}); without it: "
        "one streaming endpoint, checked as given",
    )
    group.addoption("--stream-manifest", help="path to prefab-manifest.json")
    group.addoption("--stream-contract", help="contract name or file (default: prefab)")
    group.addoption(
        "--stream-method",
        metavar="METHOD",
        help="HTTP method for an endpoint checked alone (default: GET, POST with --stream-body)",
    )
    group.addoption(
        "--stream-body",
        metavar="JSON|@FILE",
        help="the JSON request body for an endpoint checked alone (--stream-body=@file reads "
        "a file)",
    )
    group.addoption(
        "--stream-openapi",
        metavar="SPEC",
        help="an OpenAPI document (file or URL): one test per streaming operation",
    )
    group.addoption(
        "--stream-base-url",
        metavar="URL",
        help="where --stream-openapi's operations are served (default: the document's servers, "
        "or the URL it was read from)",
    )
    group.addoption(
        "--stream-operation",
        action="append",
        default=[],
        metavar="ID|'METHOD /path'",
        help="test only this --stream-openapi operation, or one the document does not mark as "
        "streaming (repeatable)",
    )
    group.addoption(
        "--stream-header",
        action="append",
        default=[],
        metavar="'K: V'",
        help="a header for every request, e.g. 'Authorization: Bearer …' (repeatable; never "
        "shown in reports)",
    )
    group.addoption(
        "--stream-timeout",
        type=float,
        metavar="S",
        help=f"longest run of one stream, in seconds (default: {SUITE_TOTAL_TIMEOUT:g}, or "
        "total-timeout in stream-harness.toml)",
    )
    group.addoption(
        "--stream-examples",
        type=int,
        metavar="N",
        help="generated inputs per function in the property suites (default: 100, or "
        "examples in stream-harness.toml)",
    )
    group.addoption("--stream-seed", type=int, help="Hypothesis seed, for a reproducible run")
    group.addoption(
        "--stream-strict",
        action="store_true",
        default=None,
        help="warnings fail too (default: false, or strict in stream-harness.toml)",
    )
    group.addoption(
        "--stream-database",
        default=".hypothesis",
        metavar="DIR",
        help="where found failures are kept to be tried first next time; 'none' keeps none "
        "(default: .hypothesis)",
    )


_REQUEST_KEY = pytest.StashKey[tuple[str | None, str | None]]()


def pytest_configure(config: pytest.Config) -> None:
    """Check the request options before anything is collected: a bad one is a usage error."""
    method, body = config.getoption("--stream-method"), config.getoption("--stream-body")
    if (method or body) and config.getoption("--stream-manifest"):
        given = [o for o, v in (("--stream-method", method), ("--stream-body", body)) if v]
        verb = "applies" if len(given) == 1 else "apply"
        raise pytest.UsageError(
            f"stream-harness: {' and '.join(given)} {verb} to an endpoint checked alone; with "
            "--stream-manifest "
            'the suites POST {"inputs": …} to {url}/invoke/{name}'
        )
    if method is not None and not (method.isascii() and method.isalpha()):
        raise pytest.UsageError(f"stream-harness: --stream-method: not an HTTP method: {method!r}")
    config.stash[_REQUEST_KEY] = (method.upper() if method else None, _body(body))
    for header in config.getoption("--stream-header"):
        name, sep, _ = header.partition(":")
        if not sep or not name.strip() or any(c in name for c in " \t\r\n"):
            raise pytest.UsageError(
                f"stream-harness: --stream-header: expected 'Name: value', got {header!r}"
            )
    if config.getoption("--stream-openapi"):
        config.stash[_PLAN_KEY] = _plan(config)
    else:
        for option in ("--stream-base-url", "--stream-operation"):
            if config.getoption(option):
                raise pytest.UsageError(f"stream-harness: {option} needs --stream-openapi SPEC")


_PLAN_KEY = pytest.StashKey["OpenAPIPlan"]()


def _plan(config: pytest.Config) -> OpenAPIPlan:
    """Read the OpenAPI document once, before collection: which operations run, with which
    contracts.  A broken document or a flag naming nothing is a usage error (exit 4), a
    document URL that cannot be reached exit 3, as with ``stream-harness openapi``."""
    from harness._core.errors import TargetUnreachable, UsageError
    from harness._proptest.openapi import plan_openapi

    contract = config.getoption("--stream-contract")
    try:
        plan = plan_openapi(
            config.getoption("--stream-openapi"),
            check_options(config),
            base_url=config.getoption("--stream-base-url"),
            operations=config.getoption("--stream-operation"),
            contracts=[contract] if contract else [],
        )
    except UsageError as e:
        raise pytest.UsageError(f"stream-harness: --stream-openapi: {in_pytest(str(e))}") from None
    except TargetUnreachable as e:
        pytest.exit(f"stream-harness: --stream-openapi: {e}", returncode=3)
    for planned in plan.operations:
        if planned.skipped is not None:
            planned.skipped = in_pytest(planned.skipped)
    return plan


#: The command's flags that the engine's messages name, and this plugin's for the same thing.
_FLAGS = re.compile(r"(?<![\w-])--(operation|contract|base-url|header|examples|seed|strict)\b")


def in_pytest(message: str) -> str:
    """An engine message with the ``stream-harness`` command's flags (``--contract``) said as
    this plugin's options (``--stream-contract``)."""
    return _FLAGS.sub(r"--stream-\1", message)


def openapi_plan(config: pytest.Config) -> OpenAPIPlan | None:
    """What ``--stream-openapi`` runs (read at configure time), or None without it."""
    return config.stash.get(_PLAN_KEY, None)


def _body(text: str | None) -> str | None:
    """``--stream-body``: JSON text, or ``@file``; sent as given, once known to be JSON."""
    if text is None:
        return None
    import json

    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as e:
            raise pytest.UsageError(
                f"stream-harness: --stream-body: cannot read {text[1:]}: {e.strerror or e}"
            ) from None
    try:
        json.loads(text)
    except ValueError as e:
        raise pytest.UsageError(f"stream-harness: --stream-body is not valid JSON: {e}") from None
    return text


def endpoint_request(config: pytest.Config) -> tuple[str, str | None]:
    """The method and body sent to an endpoint checked alone (``--stream-url`` without
    ``--stream-manifest``): ``--stream-method``, else POST with a body and GET without."""
    method, body = config.stash.get(_REQUEST_KEY, (None, None))
    return method or ("POST" if body is not None else "GET"), body


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    url, manifest = config.getoption("--stream-url"), config.getoption("--stream-manifest")
    plan = openapi_plan(config)
    lines = []
    if plan is not None:
        n = len(plan.operations)
        lines.append(
            f"stream-harness: testing the OpenAPI document {plan.spec}: {n} operation"
            f"{'s' * (n != 1)} at {plan.base_url}"
        )
    if not (url or manifest):
        return lines or None
    contract = settings(config)["contract"]
    line = f"stream-harness: url={url or '-'} manifest={manifest or '-'} contract={contract}"
    if url and manifest:
        target = f"a prefab gateway: each function at {url.rstrip('/')}/invoke/{{name}}"
    elif url:
        method, _ = endpoint_request(config)
        target = f"one streaming endpoint: {method} {url}"
    else:
        target = "a manifest, no target (--stream-url)"
    strict = " (strict: warnings fail)" if settings(config)["strict"] else ""
    return [line, f"stream-harness: testing {target}{strict}", *lines]


_SETTINGS_KEY = pytest.StashKey[dict[str, Any]]()


def settings(config: pytest.Config) -> dict[str, Any]:
    """The suites' settings: the options given, else the configuration (read once, from the
    directory pytest was started in), else the defaults.  A bad file is a usage error."""
    if _SETTINGS_KEY in config.stash:
        return config.stash[_SETTINGS_KEY]
    from harness._cli.config import read_config
    from harness._core.errors import UsageError

    try:
        cfg = read_config("pytest", cwd=config.invocation_params.dir)
    except UsageError as e:
        raise pytest.UsageError(f"stream-harness: {e}") from None
    given = {
        "contract": config.getoption("--stream-contract"),
        "total-timeout": config.getoption("--stream-timeout"),
        "examples": config.getoption("--stream-examples"),
        "seed": config.getoption("--stream-seed"),
        "strict": config.getoption("--stream-strict"),
    }
    values = {key: cfg.get(key) for key in ("contract", "first-byte-timeout", "idle-timeout")}
    values["total-timeout"] = (
        cfg.get("total-timeout") if cfg.is_set("total-timeout") else SUITE_TOTAL_TIMEOUT
    )
    values["examples"], values["seed"] = cfg.get("examples"), cfg.get("seed")
    values["strict"] = cfg.get("strict")
    values.update({key: value for key, value in given.items() if value is not None})
    config.stash[_SETTINGS_KEY] = values
    return values


def _required(config: pytest.Config, option: str) -> str:
    value: str | None = config.getoption(option)
    if not value:
        pytest.skip(f"{option} not given: this test needs it")
    return value


@pytest.fixture(scope="session")
def stream_url(pytestconfig: pytest.Config) -> str:
    return _required(pytestconfig, "--stream-url").rstrip("/")


@pytest.fixture(scope="session")
def stream_manifest_path(pytestconfig: pytest.Config) -> Path:
    return Path(_required(pytestconfig, "--stream-manifest"))


@pytest.fixture(scope="session")
def stream_manifest(stream_manifest_path: Path) -> Manifest:
    from harness._contracts.manifest import load_manifest
    from harness._core.errors import UsageError

    try:
        manifest, found = load_manifest(stream_manifest_path)
    except UsageError as e:
        pytest.skip(str(e))
    if manifest is None:
        rules = ", ".join(sorted({v.rule for v in found}))
        pytest.skip(f"the manifest is invalid ({rules}): see the manifest suite")
    return manifest


@pytest.fixture(scope="session")
def stream_settings(pytestconfig: pytest.Config) -> dict[str, Any]:
    """The suites' settings by key (``contract``, ``total-timeout``, ``examples``, ``seed``...):
    the options, else stream-harness.toml / STREAM_HARNESS_*, else the defaults."""
    return settings(pytestconfig)


@pytest.fixture(scope="session")
def stream_contract(pytestconfig: pytest.Config) -> str:
    contract: str = settings(pytestconfig)["contract"]
    return contract


@pytest.fixture(scope="session")
def stream_options(pytestconfig: pytest.Config) -> CheckOptions:
    return check_options(pytestconfig)


def check_options(config: pytest.Config) -> CheckOptions:
    """CheckOptions of the settings: the contract, --stream-header, the timeouts (the first-byte
    and idle ones capped by the total) and strictness."""
    from harness._cli.flags import _header
    from harness._core.options import CheckOptions

    values = settings(config)
    total: float = values["total-timeout"]
    try:
        headers = tuple(_header(h) for h in config.getoption("--stream-header"))
    except Exception as e:  # argparse.ArgumentTypeError: a usage error, said once
        raise pytest.UsageError(f"--stream-header: {e}") from None
    return CheckOptions(
        contract=values["contract"],
        headers=headers,
        first_byte_timeout=min(values["first-byte-timeout"], total),
        idle_timeout=min(values["idle-timeout"], total),
        total_timeout=total,
        strict=bool(values["strict"]),
    )


@pytest.fixture
def stream_check(stream_url: str, stream_options: CheckOptions) -> Callable[..., CheckResult]:
    """``stream_check(function, inputs=None, **options)``: POST ``{"inputs": ...}`` to
    ``{url}/invoke/{function}`` and check the stream; ``options`` override CheckOptions fields
    (``resume_after=2``, ``total_timeout=5``...).  An unreachable target fails the test."""
    import dataclasses

    from harness._core.errors import TargetUnreachable
    from harness._runners.check import check

    def run(function: str, inputs: dict[str, Any] | None = None, **options: Any) -> CheckResult:
        opts = dataclasses.replace(stream_options, inputs=inputs or {}, **options)
        try:
            return check(f"{stream_url}/invoke/{function}", opts)
        except TargetUnreachable as e:
            pytest.fail(str(e), pytrace=False)

    return run
