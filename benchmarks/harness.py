"""Benchmarks: the shared harness. Each ``bench_*.py`` module exposes ``run(quick: bool) -> list[Result]``.

Every result is reported beside a baseline measured in the same run, so the README quotes ratios, not absolute
numbers from some other machine.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path

from attrs import asdict, frozen

__all__ = ["Result", "write_results"]


@frozen
class Result:
    """One measurement: ``value`` in ``unit``, and the same-run ``baseline`` it is compared with (if any)."""

    suite: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """value / baseline."""
        return None if not self.baseline else self.value / self.baseline


def write_results(results: Sequence[Result], folder: Path) -> tuple[Path, Path]:
    """Write ``latest.json`` and ``latest.md`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "python": platform.python_version()}
    rows = [{**asdict(r), "ratio": r.ratio} for r in results]
    json_path = folder / "latest.json"
    json_path.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    lines = [
        f"# Benchmark results ({meta['when']}, Python {meta['python']})",
        "",
        "| suite | measurement | value | baseline | ratio | note |",
        "| --- | --- | ---: | --- | ---: | --- |",
    ]
    for r in results:
        baseline = f"{r.baseline:,.1f} ({r.baseline_name})" if r.baseline is not None else ""
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        lines.append(f"| {r.suite} | {r.name} | {r.value:,.1f} {r.unit} | {baseline} | {ratio} | {r.note} |")
    md_path = folder / "latest.md"
    md_path.write_text("\n".join(lines) + "\n")
    return json_path, md_path
