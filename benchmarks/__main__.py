"""Benchmarks: run every ``benchmarks/bench_*.py`` suite and write ``benchmarks/results/latest.{json,md}``.

Usage: ``make bench`` (or ``python -m benchmarks [--quick] [suite ...]``).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

import benchmarks
from benchmarks.harness import Result, write_results


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument("suites", nargs="*", help="suite names (default: all)")
    args = parser.parse_args()
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    selected = [n for n in names if not args.suites or n.removeprefix("bench_") in args.suites]
    results: list[Result] = []
    for name in selected:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"running {name} ...", flush=True)
        results.extend(module.run(quick=args.quick))
    json_path, md_path = write_results(results, Path(__file__).parent / "results")
    print(md_path.read_text())
    print(f"written: {json_path}, {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
