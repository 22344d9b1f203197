"""The naive streaming locustfile ``bench/load_capacity.py`` compares against: what the usual
guide suggests -- ``HttpUser``, ``iter_lines``, ``json.loads`` and ``jsonschema`` per event.

It counts the events it validated and, when Locust quits, writes the count and the seconds it
counted for to ``$NAIVE_COUNT_FILE``.  Streams are cut at ``$NAIVE_RUN_S`` after the test
started (``--stop-timeout 0`` would let each user finish its stream, far past ``-t``), so the
rate is over the time it actually ran, as stream-harness's own is.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from locust import HttpUser, constant, events, task

from harness._core.schemas import schema_validator

VALIDATOR = schema_validator("prefab/event.schema.json")
PATH = os.environ.get("NAIVE_PATH", "/stream")
RUN_S = float(os.environ.get("NAIVE_RUN_S", "inf"))
COUNT = [0]
CLOCK = {"start": 0.0, "last": 0.0}


class NaiveStreams(HttpUser):
    wait_time = constant(0)

    @task
    def stream(self) -> None:
        r = self.client.get(PATH, stream=True, headers={"Accept": "text/event-stream"})
        try:
            deadline = CLOCK["start"] + RUN_S
            for line in r.iter_lines():
                if line.startswith(b"data:"):
                    VALIDATOR.validate(json.loads(line[5:]))
                    COUNT[0] += 1
                    now = CLOCK["last"] = time.monotonic()
                    if now >= deadline:
                        break  # cut at the end, as every contender is
        finally:
            r.close()


def _start(**_: Any) -> None:
    CLOCK["start"] = CLOCK["last"] = time.monotonic()


def _write(**_: Any) -> None:
    with open(os.environ["NAIVE_COUNT_FILE"], "w", encoding="utf-8") as f:
        f.write(f"{COUNT[0]} {CLOCK['last'] - CLOCK['start']}")


events.test_start.add_listener(_start)
events.quitting.add_listener(_write)
