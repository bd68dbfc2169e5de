"""``python -m benchmarks.mutation``: run the passes (resuming where a previous run stopped) and write the report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.mutation.lua_pass import last_lua_pass, run_lua_pass
from benchmarks.mutation.mutmut_pass import ROOT, collect_target, run_target
from benchmarks.mutation.report import ModuleResult, write_report
from benchmarks.mutation.targets import PY_TARGETS

REPORT = ROOT / "benchmarks" / "results" / "mutation.md"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mutation", description=__doc__)
    parser.add_argument("--only", action="append", default=[], help="target key (repeatable); default: all, and lua")
    parser.add_argument("--fresh", action="store_true", help="forget earlier verdicts and run every mutant again")
    parser.add_argument("--budget-min", type=float, default=40.0, help="wall-clock budget for the Python pass")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run in parallel")
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from the last run's verdicts")
    args = parser.parse_args()
    wanted = set(args.only)
    targets = [target for target in PY_TARGETS if not wanted or target.key in wanted]
    with_lua = not wanted or "lua" in wanted
    started = time.monotonic()
    results: list[ModuleResult] = []
    if args.report_only:
        for target in targets:
            verdicts, left_out = collect_target(target)
            results.append(ModuleResult.of(target.key, target.path, verdicts, left_out=left_out))
        if with_lua:
            results.append(last_lua_pass())
    else:
        lua = run_lua_pass(timeout_s=300.0) if with_lua else None  # first: minutes, outside the Python budget
        deadline = time.monotonic() + args.budget_min * 60
        for target in targets:
            print(f"python pass: {target.path}", flush=True)
            remaining = max(60.0, deadline - time.monotonic())
            verdicts, left_out = run_target(target, fresh=args.fresh, timeout_s=remaining, jobs=args.jobs)
            results.append(ModuleResult.of(target.key, target.path, verdicts, left_out=left_out))
        if lua is not None:
            results.append(lua)
    minutes = None if args.report_only else (time.monotonic() - started) / 60
    write_report(args.report, results, minutes=minutes)
    print(f"wrote {args.report}")
    for result in results:
        print(f"  {result.path}: {result.summary()}")


if __name__ == "__main__":
    main()
