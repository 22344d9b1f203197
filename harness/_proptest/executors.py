"""Executors: one example in, one checked stream out -- a module's generator or a gateway URL."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any

import httpx

from harness._contracts.gateway_codes import GatewayCodes
from harness._contracts.openapi import Operation
from harness._contracts.openapi_rules import (
    OPENAPI_CONTENT_TYPE,
    UNDOCUMENTED_STATUS,
    content_type_mismatch,
    undocumented_status,
)
from harness._core.errors import TargetUnreachable
from harness._core.options import CheckOptions
from harness._core.redact import redact_url
from harness._core.rules import violation
from harness._core.session import CheckResult, ContractChecker
from harness._proptest.reproduce import check_command, curl_command
from harness._proptest.requests import NO_BODY, ApiRequest, build_request, check_line, curl_line
from harness._runners.gen import GeneratorWorker

# -- executors: one example in, one checked stream out ----------------------------------------


__all__ = [
    "Executor",
    "ModuleExecutor",
    "OpenAPIExecutor",
    "UrlExecutor",
]


class Executor:
    """Runs one function with one input and checks the stream."""

    target: str

    def run(self, name: str, inputs: dict[str, Any], checker: ContractChecker) -> CheckResult:
        raise NotImplementedError

    def reproducer(self, name: str, inputs: dict[str, Any]) -> tuple[str, str | None]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class ModuleExecutor(Executor):
    def __init__(self, module: str, options: CheckOptions, worker: GeneratorWorker) -> None:
        self.target = module
        self.options = options
        self.worker = worker

    def run(self, name: str, inputs: dict[str, Any], checker: ContractChecker) -> CheckResult:
        result = self.worker.run(f"{self.target}:{name}", inputs, self.options, checker)
        if result.extra.get("interrupted"):
            raise KeyboardInterrupt  # the runner kept a partial stream; the run must stop
        return result

    def reproducer(self, name: str, inputs: dict[str, Any]) -> tuple[str, str | None]:
        return check_command(f"{self.target}:{name}", inputs, self.options), None


class UrlExecutor(Executor):
    """Examples as HTTP requests, all on one event loop with one client: a new client per
    example would pay for loading the TLS trust store (about 50 ms) and a connection each
    time, which is most of an example's cost on loopback."""

    def __init__(self, url: str, options: CheckOptions) -> None:
        self.target = redact_url(url)
        self.base = url
        self.options = options
        self.loop = asyncio.new_event_loop()
        self._client: httpx.AsyncClient | None = None
        self._probe: httpx.AsyncClient | None = None
        #: What the probe client saw of the last response: status, and an error's body.
        self.seen: dict[str, Any] = {}

    def url(self, name: str) -> str:
        if "{name}" in self.base:
            return self.base.replace("{name}", name)
        return f"{self.base.rstrip('/')}/invoke/{name}"

    def run(self, name: str, inputs: dict[str, Any], checker: ContractChecker) -> CheckResult:
        from harness._runners.http import run_url_async

        if self._client is None:
            self._client = self._new_client()
        options = dataclasses.replace(self.options, inputs=inputs)
        # The reference gateway turns a function's crash into a well-formed error event with a
        # reserved code: read it back as the bug it is (other servers never send these codes).
        checker = GatewayCodes(checker)
        return self.loop.run_until_complete(
            run_url_async(self.url(name), options, checker, client=self._client)
        )

    def probe(
        self, name: str, inputs: dict[str, Any], checker: ContractChecker
    ) -> tuple[CheckResult, int | None, bytes]:
        """One request whose status and error body are kept (for invalid inputs)."""
        from harness._runners.http import run_url_async

        if self._probe is None:
            self._probe = self._new_client(hooks={"response": [self._on_response]})
        self.seen = {}
        options = dataclasses.replace(self.options, inputs=inputs, resume_after=None)
        result = self.loop.run_until_complete(
            run_url_async(self.url(name), options, checker, client=self._probe)
        )
        return result, self.seen.get("status"), self.seen.get("body", b"")

    async def _on_response(self, response: httpx.Response) -> None:
        self.seen["status"] = response.status_code
        if not 200 <= response.status_code < 300:
            try:  # an error body is small: read it here, bounded, to judge it
                async with asyncio.timeout(self.options.idle_timeout):
                    await response.aread()
                self.seen["body"] = response.content[:4096]
            except (TimeoutError, httpx.HTTPError):
                self.seen["body"] = b""

    def _new_client(self, hooks: dict[str, list[Any]] | None = None) -> httpx.AsyncClient:
        from harness._runners.http import make_client

        # As run_url makes its own (the same TLS trust and proxy).
        return make_client(self.base, self.options, event_hooks=hooks)

    def reproducer(self, name: str, inputs: dict[str, Any]) -> tuple[str, str | None]:
        url = redact_url(self.url(name))
        return (
            check_command(url, inputs, self.options),
            curl_command(url, inputs, self.options),
        )

    def close(self) -> None:
        for client in (self._client, self._probe):
            if client is not None:
                self.loop.run_until_complete(client.aclose())
        self._client = self._probe = None
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


class OpenAPIExecutor(Executor):
    """Examples as the requests of OpenAPI operations: the generated parts (path, query,
    header and cookie parameters, body) built into one request by the document's rules, sent
    to ``base_url``, its stream checked -- and its status and media type held to the
    document.  ``name`` is the operation's label (``POST /chat``).  One event loop and one
    client for every example, as :class:`UrlExecutor`."""

    def __init__(
        self,
        base_url: str,
        options: CheckOptions,
        operations: Mapping[str, Operation],
        contracts: Mapping[str, str],
    ) -> None:
        self.target = redact_url(base_url)
        self.base = base_url
        self.options = options
        self.operations = operations
        #: The contract named in each operation's reproducer (``check --contract``).
        self.contracts = contracts
        self.loop = asyncio.new_event_loop()
        self._client: httpx.AsyncClient | None = None
        #: Per operation: the statuses of generated requests rejected with a documented 4xx.
        self.rejected: dict[str, list[int]] = {}

    def request(self, name: str, raw: Mapping[str, Any]) -> ApiRequest:
        return build_request(self.operations[name], raw)

    def send(self, name: str, raw: Mapping[str, Any], checker: ContractChecker) -> CheckResult:
        """Send one request as it is (valid or not) and check what came back."""
        from harness._runners.http import make_client, run_url_async

        op, request = self.operations[name], self.request(name, raw)
        if self._client is None:
            self._client = make_client(self.base, self.options)
        given = {k.lower() for k, _ in self.options.headers}
        headers = [(k, v) for k, v in request.headers if k.lower() not in given]
        if op.media_type is not None and "accept" not in given:
            headers.append(("Accept", op.media_type))
        if request.body is not NO_BODY and request.content_type != "application/json":
            headers.append(("Content-Type", request.content_type))
        options = dataclasses.replace(
            self.options,
            method=request.method,
            body=request.body_text(),
            inputs=None,
            headers=(*headers, *self.options.headers),
            resume_after=None,
        )
        url = request.url(self.base)
        try:
            return self.loop.run_until_complete(
                run_url_async(url, options, checker, client=self._client)
            )
        except TargetUnreachable:
            # A server that broke the previous stream may have closed the kept-alive
            # connection under us: one more try, on a new connection, before giving up.
            self.loop.run_until_complete(self._client.aclose())
            self._client = make_client(self.base, self.options)
            return self.loop.run_until_complete(
                run_url_async(url, options, checker, client=self._client)
            )

    def run(self, name: str, inputs: dict[str, Any], checker: ContractChecker) -> CheckResult:
        result = self.send(name, inputs, checker)
        op = self.operations[name]
        status = result.extra.get("status")
        if not isinstance(status, int):
            return result
        found = []
        replaced: set[str] = set()  # one problem, one violation: the document's rule says it
        msg = undocumented_status(status, op.statuses)
        if msg:
            found.append(violation(UNDOCUMENTED_STATUS, msg))
            replaced.add("http.status")
        elif 400 <= status < 500:
            # A valid request refused with a status the document gives for it (a 404 for an
            # id that does not exist): the operation's answer, not a broken stream.
            self.rejected.setdefault(name, []).append(status)
            result.violations[:] = [v for v in result.violations if v.rule != "http.status"]
        if 200 <= status < 300 and op.media_type is not None:
            msg = content_type_mismatch(result.extra.get("content_type"), op.media_type)
            if msg:
                found.append(violation(OPENAPI_CONTENT_TYPE, msg))
                replaced.add("http.content-type")
        if replaced:
            result.violations[:] = [v for v in result.violations if v.rule not in replaced]
        result.violations[:0] = found
        return result

    def reproducer(self, name: str, inputs: dict[str, Any]) -> tuple[str, str | None]:
        request = self.request(name, inputs)
        options = dataclasses.replace(self.options, contract=self.contracts[name])
        return (
            check_line(request, self.base, options),
            curl_line(request, self.base, self.options.headers),
        )

    def close(self) -> None:
        if self._client is not None:
            self.loop.run_until_complete(self._client.aclose())
        self._client = None
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
