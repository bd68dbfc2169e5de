"""Writes ``benchmarks/results/mutation.md``: the score per module and every survivor with its location."""

from __future__ import annotations

import ast
import re
import time
from collections.abc import Sequence
from pathlib import Path

from attrs import frozen

from benchmarks.mutation.equivalents import why_equivalent
from benchmarks.mutation.mutmut_pass import ROOT, MutantResult

__all__ = ["ModuleResult", "Survivor", "write_report"]

_KILLED = frozenset({"killed", "timeout"})
_HUNK = re.compile(r"^@@ -(\d+)")


@frozen
class Survivor:
    """A mutant no test killed: where it is, its diff, and why it is equivalent (``None``: a real gap)."""

    name: str
    location: str
    diff: str
    equivalent: str | None
    status: str = "survived"
    """``survived``, or ``no tests`` when no mapped test even runs the function."""


@frozen
class ModuleResult:
    """The verdicts of one module's mutants."""

    key: str
    path: str
    total: int
    killed: int
    unchecked: int
    survivors: tuple[Survivor, ...]
    left_out: tuple[str, ...] = ()
    """Mapped tests that failed on the unmutated code and were left out of this module's run."""

    @classmethod
    def of(cls, key: str, path: str, results: Sequence[MutantResult], *, left_out: Sequence[str] = ()) -> ModuleResult:
        """Count ``results`` and place and classify the survivors."""
        starts = _function_starts(ROOT / path) if path.endswith(".py") else {}
        survivors = []
        for result in results:
            if result.status in _KILLED or result.status == "not checked":
                continue
            function = _function_of(result.name)
            location = _location(path, starts.get(function), result.diff) if path.endswith(".py") else result.name
            why = why_equivalent(path, function, result.diff)
            survivors.append(Survivor(result.name, location, result.diff, why, result.status))
        return cls(
            key,
            path,
            total=len(results),
            killed=sum(1 for r in results if r.status in _KILLED),
            unchecked=sum(1 for r in results if r.status == "not checked"),
            survivors=tuple(survivors),
            left_out=tuple(left_out),
        )

    @property
    def equivalent(self) -> int:
        return sum(1 for s in self.survivors if s.equivalent is not None)

    @property
    def score(self) -> float:
        """Killed over checked non-equivalent mutants (1.0 when there are none)."""
        relevant = self.total - self.unchecked - self.equivalent
        return self.killed / relevant if relevant else 1.0

    def summary(self) -> str:
        relevant = self.total - self.unchecked - self.equivalent
        extra = f", {self.unchecked} not run (out of time)" if self.unchecked else ""
        return f"{self.killed}/{relevant} killed ({self.score:.0%}), {self.equivalent} equivalent{extra}"


def _function_of(name: str) -> str:
    """``pkg.mod.xǁClassǁmethod__mutmut_3`` -> ``xǁClassǁmethod``; Lua names are kept as they are."""
    return name.rpartition(".")[2].partition("__mutmut_")[0] if "__mutmut_" in name else name


def _function_starts(path: Path) -> dict[str, int]:
    starts: dict[str, int] = {}

    def visit(body: list[ast.stmt], owner: str | None) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                key = f"xǁ{owner}ǁ{node.name}" if owner else f"x_{node.name}"
                starts[key] = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            elif isinstance(node, ast.ClassDef):
                visit(node.body, node.name if owner is None else f"{owner}.{node.name}")

    visit(ast.parse(path.read_text()).body, None)
    return starts


def _location(path: str, start: int | None, diff: str) -> str:
    """``path:line`` of the first changed line (the function's own line when the diff cannot say)."""
    if start is None:
        return path
    line = None
    for text in diff.splitlines():
        hunk = _HUNK.match(text)
        if hunk:
            line = start + int(hunk.group(1)) - 1
            continue
        if line is None or text.startswith(("---", "+++")):
            continue
        if text.startswith("-"):
            return f"{path}:{line}"
        if not text.startswith("+"):
            line += 1
    return f"{path}:{start}"


def write_report(target: Path, results: Sequence[ModuleResult], *, minutes: float | None) -> None:
    """Write the markdown report for ``results`` (``minutes`` None: rewritten from stored verdicts)."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    how = f"{minutes:.1f} min" if minutes is not None else "rewritten from the last runs' stored verdicts"
    lines = [
        "# Mutation testing: the stream core",
        "",
        f"`make mutate`, {when}, {how}. Python modules by "
        "mutmut 3 (string literals: one `XX..XX` mutant each; log lines and raised errors' messages not mutated), the "
        "Lua script by hand-listed mutants against the Redis stream-log tests. Score = killed / (mutants run - "
        "equivalent); a timeout counts as killed. Target: >= 90% per module.",
        "",
        "| module | killed / non-equivalent | score | equivalent | survivors (real) | not run |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        relevant = result.total - result.unchecked - result.equivalent
        real = len(result.survivors) - result.equivalent
        score = f"{result.score:.0%}" if relevant else "n/a"
        lines.append(
            f"| `{result.path}` | {result.killed} / {relevant} | {score} | {result.equivalent} | {real} | "
            f"{result.unchecked} |"
        )
    for result in results:
        if result.left_out:
            lines += ["", f"Left out of `{result.path}` (failing on the unmutated code): "]
            lines += [f"- `{node}`" for node in result.left_out]
    for result in results:
        if not result.survivors:
            continue
        lines += ["", f"## `{result.path}`", ""]
        for survivor in sorted(result.survivors, key=lambda s: (s.equivalent is not None, s.location)):
            verdict = f"equivalent: {survivor.equivalent}" if survivor.equivalent else f"**{survivor.status}**"
            lines += [f"- `{survivor.location}` `{survivor.name}`: {verdict}", "", "  ```diff"]
            body = [ln for ln in survivor.diff.splitlines() if not ln.startswith(("---", "+++"))]
            lines += [f"  {ln}" for ln in body if ln.startswith(("-", "+", "@@"))] + ["  ```"]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n")
