"""Benchmark: how long ``switchyard version`` and ``switchyard config`` take, start to exit (target: version < 1 s).

Both are whole processes, timed from outside, beside a bare ``python -c pass`` of the same interpreter: the ratio says
what Switchyard adds to the interpreter's own start. Vendor SDKs are imported only by the vendors a process serves,
so neither command should pay for one.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import Result

_ROOT = Path(__file__).resolve().parents[1]


def _median_s(command: list[str], runs: int) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    times = []
    for _ in range(runs + 1):  # the first run warms the page cache and is not counted
        started = time.perf_counter()
        subprocess.run(command, cwd=_ROOT, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def run(quick: bool = False) -> list[Result]:
    runs = 3 if quick else 7
    cli = [sys.executable, "-m", "entrypoints.cli"]
    baseline = _median_s([sys.executable, "-c", "pass"], runs) * 1000
    results = []
    for name in ("version", "config"):
        value = _median_s([*cli, name], runs) * 1000
        note = "target < 1,000 ms" if name == "version" else ""
        results.append(
            Result("cli", f"switchyard {name} (start to exit)", value, "ms", baseline, "python -c pass", note)
        )
    return results
