"""The naive streaming locustfile ``bench/load_capacity.py`` compares against: what the usual
guide suggests -- ``HttpUser``, ``iter_lines``, ``json.loads`` and ``jsonschema`` per event.

It counts the events it validated and, when Locust quits, writes the count to
``$NAIVE_COUNT_FILE``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from locust import HttpUser, constant, events, task

from harness._core.schemas import schema_validator

VALIDATOR = schema_validator("prefab/event.schema.json")
PATH = os.environ.get("NAIVE_PATH", "/stream")
COUNT = [0]


class NaiveStreams(HttpUser):
    wait_time = constant(0)

    @task
    def stream(self) -> None:
        r = self.client.get(PATH, stream=True, headers={"Accept": "text/event-stream"})
        try:
            for line in r.iter_lines():
                if line.startswith(b"data:"):
                    VALIDATOR.validate(json.loads(line[5:]))
                    COUNT[0] += 1
        finally:
            r.close()


def _write(**_: Any) -> None:
    with open(os.environ["NAIVE_COUNT_FILE"], "w", encoding="utf-8") as f:
        f.write(str(COUNT[0]))


events.quitting.add_listener(_write)
