"""The Python pass: mutmut 3 on one module at a time, in a staging directory, resumable and bounded.

Each target gets ``var/mutation/<key>/``: symlinks to the project's packages and a ``pyproject.toml`` whose
``[tool.mutmut]`` section is the project's (shared settings) narrowed to the target and its mapped tests. mutmut keeps
every verdict in ``mutants/``, so an interrupted run resumes where it stopped; when the mapped tests (or the shared
settings) change, the target's verdicts are thrown away, since a survivor may now be killed. mutmut refuses to run
when a mapped test fails on the unmutated code, so such tests (the tree may be mid-change) are found first, left out
with ``--deselect`` and named in the report.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from attrs import frozen

from benchmarks.mutation.targets import PyTarget

__all__ = ["ROOT", "MutantResult", "collect_target", "run_target"]

ROOT: Final = Path(__file__).resolve().parents[2]
_LAUNCHER: Final = Path(__file__).with_name("launcher.py")
_LINKED: Final = ("domain", "ports", "services", "adapters", "entrypoints", "settings", "container.py", "tests")
_FINGERPRINTED: Final = ("tests/fakes", "tests/support", "tests/conftest.py")
_STATUS: Final[dict[int | None, str]] = {0: "survived", 1: "killed", 3: "killed", None: "not checked", 33: "no tests"}
_TIMEOUT_CODES: Final = frozenset({-24, 24, 152, 255, 36, -9})


@frozen
class MutantResult:
    """One mutant's verdict and, for a survivor, its diff."""

    name: str
    status: str
    diff: str = ""


def _status(code: int | None) -> str:
    if code in _TIMEOUT_CODES:
        return "timeout"  # a hang or a runaway loop the tests made visible: counted as killed
    return _STATUS.get(code, "suspicious")


def _test_files(target: PyTarget) -> list[str]:
    return sorted({str(p.relative_to(ROOT)) for glob in target.tests for p in ROOT.glob(glob)})


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


@functools.cache
def failing_tests(tests: tuple[str, ...], cli_args: tuple[str, ...]) -> tuple[str, ...]:
    """The node ids among ``tests`` that fail on the unmutated code (run once per test set)."""
    command = [sys.executable, "-m", "pytest", "-q", "-rf", *cli_args, *tests]
    env = {**os.environ, "SWITCHYARD_HYPOTHESIS_SCALE": _scale()}
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"the mapped tests did not finish on the unmutated code: {' '.join(tests)}") from None
    return tuple(sorted(set(re.findall(r"^FAILED (.+?)(?: - .*)?$", done.stdout, flags=re.MULTILINE))))


def _scale() -> str:
    return os.environ.get("SWITCHYARD_HYPOTHESIS_SCALE", "0.02")


def _mutmut_section(
    target: PyTarget, tests: Sequence[str], shared: Mapping[str, Any], flaky: Sequence[str] = ()
) -> str:
    patterns = list(shared.get("do_not_mutate_patterns", []))
    cli_args = list(shared.get("pytest_add_cli_args", []))
    for node in sorted({*failing_tests(tuple(tests), tuple(cli_args)), *flaky}):
        cli_args += ["--deselect", node]
    lines = [
        "[tool.mutmut]",
        f"source_paths = {_toml_list([target.path])}",
        f"also_copy = {_toml_list([p for p in _LINKED if p != 'tests'])}",
        f"pytest_add_cli_args_test_selection = {_toml_list(tests)}",
        f"pytest_add_cli_args = {_toml_list(cli_args)}",
        f"do_not_mutate_patterns = {_toml_list(patterns)}",
        f"timeout_multiplier = {float(shared.get('timeout_multiplier', 4.0))}",
        f"timeout_constant = {float(shared.get('timeout_constant', 10.0))}",
        "use_git_change_detection = false",
        'on_dependency_change = "ignore"',
        "use_setproctitle = false",
    ]
    return "\n".join(lines) + "\n"


def _project_pyproject() -> tuple[str, dict[str, Any]]:
    text = (ROOT / "pyproject.toml").read_text()
    shared: dict[str, Any] = tomllib.loads(text).get("tool", {}).get("mutmut", {})
    # Drop the project's own [tool.mutmut] table (its last lines up to the next table) before appending the target's.
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        if line.startswith("["):
            skipping = line.strip() == "[tool.mutmut]"
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n", shared


def _fingerprint(tests: Sequence[str], section: str) -> str:
    digest = hashlib.sha256(section.encode())
    paths = [ROOT / t for t in tests]
    for extra in _FINGERPRINTED:
        base = ROOT / extra
        paths += sorted(base.rglob("*.py")) if base.is_dir() else [base]
    for path in sorted(set(paths)):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()


def _stage(target: PyTarget, *, fresh: bool) -> tuple[Path, list[str]]:
    stage = ROOT / "var" / "mutation" / target.key
    stage.mkdir(parents=True, exist_ok=True)
    for name in _LINKED:
        link = stage / name
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            link.symlink_to(ROOT / name)
    tests = _test_files(target)
    base, shared = _project_pyproject()
    flaky_file = stage / "flaky.txt"
    flaky = flaky_file.read_text().splitlines() if flaky_file.exists() else []
    section = _mutmut_section(target, tests, shared, flaky)
    (stage / "pyproject.toml").write_text(base + "\n" + section)
    stamp = stage / "fingerprint"
    fingerprint = _fingerprint(tests, section)
    if fresh or not stamp.exists() or stamp.read_text() != fingerprint:
        shutil.rmtree(stage / "mutants", ignore_errors=True)
    stamp.write_text(fingerprint)
    return stage, tests


def _launch(stage: Path, args: Sequence[str], *, timeout_s: float | None, log: Path) -> bool:
    """Run the launcher in ``stage``; False when it ran out of time (its process group is ended)."""
    env = {**os.environ, "SWITCHYARD_HYPOTHESIS_SCALE": _scale()}
    with log.open("a") as out:
        proc = subprocess.Popen(
            [sys.executable, str(_LAUNCHER), *args],
            cwd=stage,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            return False
    return True


def _verdicts(stage: Path, target: PyTarget) -> dict[str, int | None]:
    meta = stage / "mutants" / (target.path + ".meta")
    if not meta.exists():
        return {}
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: code for name, code in codes.items() if _selected(target, name)}


def _selected(target: PyTarget, name: str) -> bool:
    if not target.functions:
        return True
    function = name.rpartition(".")[2].partition("__mutmut_")[0]
    return function in target.functions


def run_target(
    target: PyTarget, *, fresh: bool, timeout_s: float | None, jobs: int
) -> tuple[list[MutantResult], tuple[str, ...]]:
    """Mutate ``target``, run what is still undecided (within ``timeout_s``); every verdict, and the tests left out
    because they fail on the unmutated code."""
    stage, tests = _stage(target, fresh=fresh)
    shared_args = tuple(_project_pyproject()[1].get("pytest_add_cli_args", []))
    log = stage / "mutmut.log"
    log.write_text("")
    pending_file = stage / "pending.json"
    module = target.path[: -len(".py")].replace("/", ".")
    globs = [f"{module}.{fn}__mutmut_*" for fn in target.functions] or [f"{module}.*"]
    if not tests:
        raise SystemExit(f"{target.key}: no test file matches {target.tests}")
    _launch(stage, ["pending", str(pending_file), *globs], timeout_s=300, log=log)
    pending: list[str] = json.loads(pending_file.read_text()) if pending_file.exists() else []
    print(f"  {target.key}: {len(pending)} mutants to run ({len(tests)} test files)", flush=True)
    for _ in range(3):  # a test that fails only under mutmut's own runs (flaky under load) is left out, then retried
        if not pending:
            break
        start = log.stat().st_size
        finished = _launch(stage, ["run", "--max-children", str(jobs), *pending], timeout_s=timeout_s, log=log)
        if not finished:
            print(f"  {target.key}: out of time; run again to resume", flush=True)
            break
        output = log.read_text()[start:]
        if "failed to collect stats" not in output and "Failed to run clean test" not in output:
            break
        flaky = re.findall(r"^FAILED (.+?)(?: - .*)?$", output, flags=re.MULTILINE)
        if not flaky:
            print(f"  {target.key}: mutmut could not start (see {log.relative_to(ROOT)})", flush=True)
            break
        print(f"  {target.key}: left out as flaky, retrying: {', '.join(flaky)}", flush=True)
        with (stage / "flaky.txt").open("a") as out:
            out.write("\n".join(flaky) + "\n")
        stage, tests = _stage(target, fresh=False)
        _launch(stage, ["pending", str(pending_file), *globs], timeout_s=300, log=log)
        pending = json.loads(pending_file.read_text()) if pending_file.exists() else []
    return _collect(stage, target, log, tests, shared_args)


def collect_target(target: PyTarget) -> tuple[list[MutantResult], tuple[str, ...]]:
    """The verdicts the last run left in ``target``'s staging directory, without staging or running anything."""
    stage = ROOT / "var" / "mutation" / target.key
    shared_args = tuple(_project_pyproject()[1].get("pytest_add_cli_args", []))
    return _collect(stage, target, stage / "report.log", _test_files(target), shared_args)


def _collect(
    stage: Path, target: PyTarget, log: Path, tests: Sequence[str], shared_args: tuple[str, ...]
) -> tuple[list[MutantResult], tuple[str, ...]]:
    verdicts = _verdicts(stage, target)
    survivors = sorted(
        name for name, code in verdicts.items() if _status(code) not in ("killed", "timeout", "not checked")
    )
    diffs: dict[str, str] = {}
    if survivors:
        diff_file = stage / "diffs.json"
        _launch(stage, ["diffs", str(diff_file), *survivors], timeout_s=300, log=log)
        diffs = json.loads(diff_file.read_text()) if diff_file.exists() else {}
    results = [MutantResult(name, _status(code), diffs.get(name, "")) for name, code in sorted(verdicts.items())]
    flaky_file = stage / "flaky.txt"
    flaky = flaky_file.read_text().splitlines() if flaky_file.exists() else []
    return results, tuple(sorted({*failing_tests(tuple(tests), shared_args), *flaky}))
