"""FastAPI apps the ``stream-harness openapi`` tests point the tool at (issue 10).

One module per app, each a realistic streaming backend with correct operations and planted,
input-dependent bugs (every module docstring names them).  ``APPS`` maps a short name to the
module; each module has ``app`` (the FastAPI application) and ``PLANTED`` (operation label ->
what is wrong with it; an operation not in it is correct and must never be flagged).
"""

from __future__ import annotations

from types import ModuleType

from openapi_apps import (
    fake_agent_stages,
    fake_item_schema,
    fake_json_documented,
    fake_llm_debug,
    fake_ndjson,
    fake_token_stream,
)
from openapi_apps.tally import TALLY, Tally

__all__ = ["APPS", "TALLY", "Tally"]

APPS: dict[str, ModuleType] = {
    "llm_debug": fake_llm_debug,
    "agent_stages": fake_agent_stages,
    "token_stream": fake_token_stream,
    "ndjson": fake_ndjson,
    "item_schema": fake_item_schema,
    "json_documented": fake_json_documented,
}
