"""Benchmark: the cost of the API envelope and JSON serialization per response (vs. plain ``json.dumps``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from benchmarks.harness import Result
from entrypoints.http.envelope import ApiResponse, Meta
from entrypoints.http.serialization import unstructure


def _rate(fn: Callable[[], object], seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(200):
            fn()
        count += 200
    return count / elapsed


def run(quick: bool = False) -> list[Result]:
    seconds = 0.3 if quick else 2.0
    data = {"status": "ok", "version": "0.1.0", "items": list(range(10))}
    baseline = _rate(lambda: json.dumps({"code": 200, "success": True, "data": data}), seconds)
    envelope = _rate(
        lambda: json.dumps(unstructure(ApiResponse(200, True, "ok", data=data, meta=Meta(request_id="r")))),
        seconds,
    )
    return [
        Result(
            "envelope",
            "ApiResponse unstructure + json.dumps",
            envelope,
            "ops/s",
            baseline=baseline,
            baseline_name="plain json.dumps of a dict",
        )
    ]
