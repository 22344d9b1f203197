"""stream-harness: conformance tests and load tests for streaming (SSE) endpoints."""

from harness._sse import SSEDecoder, SSEEvent

__all__ = ["SSEDecoder", "SSEEvent"]
