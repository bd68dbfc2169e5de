"""The Lua pass: hand-listed mutants of ``adapters/redis/stream_log.lua``, each run against the Redis stream-log tests.

No Python mutation tool reads Lua, so each mutant here is one operator, constant or condition swap in one section,
applied to a staged copy of the project (the adapter reads the script next to itself), and the Redis half of the
contract suite plus the Redis integration tests are run against it (Redis must be up: a skip would look like a
survivor, so ``SWITCHYARD_REQUIRE_SERVICES=1`` turns it into a failure of the clean run, which stops the pass).
A mutant whose original text is no longer in the script is reported as stale, not counted. The verdicts are kept
in ``var/mutation/lua.json`` and reused while the script, the mutants and the Redis tests are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

from attrs import frozen

from benchmarks.mutation.mutmut_pass import ROOT, MutantResult
from benchmarks.mutation.report import ModuleResult
from benchmarks.mutation.targets import LUA_TESTS

__all__ = ["LUA_MUTANTS", "LuaMutant", "last_lua_pass", "run_lua_pass"]

SCRIPT: Final = "adapters/redis/stream_log.lua"
_COPIED: Final = ("domain", "ports", "services", "adapters", "entrypoints", "settings", "container.py", "tests")


@frozen
class LuaMutant:
    """Replace ``original`` (unique within ``section``) by ``mutated``."""

    id: str
    section: str
    original: str
    mutated: str


LUA_MUTANTS: Final = (
    LuaMutant("create-overwrites", "create", "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end", ""),
    LuaMutant("create-exists-inverted", "create", "'EXISTS', KEYS[1]) == 1", "'EXISTS', KEYS[1]) == 0"),
    LuaMutant("create-status-done", "create", "'status', 'open'", "'status', 'done'"),
    LuaMutant("create-seen-set", "create", "'seen', '0'", "'seen', '1'"),
    LuaMutant("create-no-ttl", "create", "redis.call('PEXPIRE', KEYS[1], ARGV[7])", ""),
    LuaMutant("create-returns-0", "create", "return 1", "return 0"),
    LuaMutant(
        "advance-missing-is-closed", "advance", "if not status then return -1 end", "if not status then return -3 end"
    ),
    LuaMutant(
        "advance-ended-allowed",
        "advance",
        "if status ~= 'open' then return -3 end",
        "if status == 'done' then return -3 end",
    ),
    LuaMutant("advance-by-two", "advance", "'gen', 1)", "'gen', 2)"),
    LuaMutant("advance-by-zero", "advance", "'gen', 1)", "'gen', 0)"),
    LuaMutant("write-missing-is-closed", "write", "then return {-1, 0} end", "then return {-3, 0} end"),
    LuaMutant(
        "write-future-generation-accepted", "write", "if current ~= tonumber(ARGV[1])", "if current > tonumber(ARGV[1])"
    ),
    LuaMutant(
        "write-stale-generation-accepted", "write", "if current ~= tonumber(ARGV[1])", "if current < tonumber(ARGV[1])"
    ),
    LuaMutant("write-only-done-closes", "write", "if fields[2] ~= 'open' then", "if fields[2] == 'done' then"),
    LuaMutant("write-seq-skips", "write", "'last_seq', 1)", "'last_seq', 2)"),
    LuaMutant("write-no-maxlen", "write", "'MAXLEN', '~', ARGV[5], ", ""),
    LuaMutant(
        "write-status-always-done",
        "write",
        "redis.call('HSET', KEYS[1], 'status', ARGV[7])",
        "redis.call('HSET', KEYS[1], 'status', 'done')",
    ),
    LuaMutant("write-terminal-keeps-open", "write", "if ARGV[7] ~= '' then", "if ARGV[7] == '' then"),
    LuaMutant("write-meta-ttl-not-refreshed", "write", "redis.call('PEXPIRE', KEYS[1], ARGV[6])", ""),
    LuaMutant("write-log-ttl-not-refreshed", "write", "redis.call('PEXPIRE', KEYS[2], ARGV[6])", ""),
    LuaMutant("write-returns-next-seq", "write", "return {seq, current}", "return {seq + 1, current}"),
    LuaMutant("write-drops-attachment", "write", "entry[7], entry[8] = 'd', ARGV[9]", "entry[7], entry[8] = 'd', ''"),
    LuaMutant("write-attachment-always", "write", "if ARGV[9] then", "if true then"),
    LuaMutant("touch-resurrects", "touch", "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end", ""),
    LuaMutant("touch-records-zero", "touch", "'seen', ARGV[1]", "'seen', '0'"),
    # The producer lease (renew/reap), when the script has it.
    LuaMutant(
        "renew-stale-accepted",
        "renew",
        "if tonumber(fields[1]) ~= tonumber(ARGV[1])",
        "if tonumber(fields[1]) > tonumber(ARGV[1])",
    ),
    LuaMutant("renew-ended-accepted", "renew", "if fields[2] ~= 'open' then return -3 end", ""),
    LuaMutant("reap-unfenced", "reap", "redis.call('HINCRBY', KEYS[1], 'gen', 1)", ""),
    LuaMutant("reap-live-lease", "reap", "lease > now[1] * 1000", "lease < now[1] * 1000"),
    LuaMutant("reap-no-lease-reaped", "reap", "if lease <= 0 or ", "if "),
    LuaMutant("reap-ended-reaped", "reap", "if fields[1] ~= 'open' then return 0 end", ""),
)


def _sections(script: str) -> list[tuple[str, int, int]]:
    """(name, start, end) offsets of each ``-- @name`` section's body."""
    marks = [
        (script.index("\n", at) + 1, script[at + 4 : script.index("\n", at)].strip()) for at in _all(script, "-- @")
    ]
    out = []
    for i, (start, name) in enumerate(marks):
        end = script.rfind("-- @", 0, marks[i + 1][0]) if i + 1 < len(marks) else len(script)
        out.append((name, start, end))
    return out


def _all(text: str, needle: str) -> list[int]:
    found, at = [], text.find(needle)
    while at != -1:
        found.append(at)
        at = text.find(needle, at + 1)
    return found


def apply(script: str, mutant: LuaMutant) -> str | None:
    """The script with ``mutant`` applied, or ``None`` when its original text is not (once) in its section."""
    for name, start, end in _sections(script):
        body = script[start:end]
        if name == mutant.section and body.count(mutant.original) == 1:
            return script[:start] + body.replace(mutant.original, mutant.mutated) + script[end:]
    return None


def _stage() -> Path:
    stage = ROOT / "var" / "mutation" / "lua"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in _COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, stage / name, ignore=ignore)
        else:
            shutil.copy2(source, stage / name)
    shutil.copy2(ROOT / "pyproject.toml", stage / "pyproject.toml")
    return stage


def _run_tests(stage: Path, timeout_s: float) -> str:
    """``survived`` (tests pass), ``killed`` or ``timeout``."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--timeout=60", "-k", "redis"]
    env = {**os.environ, "SWITCHYARD_REQUIRE_SERVICES": "1"}
    try:
        done = subprocess.run(
            [*command, *_test_files()], cwd=stage, env=env, capture_output=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return "timeout"
    return "survived" if done.returncode == 0 else "killed"


def _test_files() -> list[str]:
    return sorted({str(p.relative_to(ROOT)) for glob in LUA_TESTS for p in ROOT.glob(glob)})


def _fingerprint() -> str:
    digest = hashlib.sha256(repr(LUA_MUTANTS).encode())
    paths = [ROOT / SCRIPT, *(ROOT / t for t in _test_files()), *sorted((ROOT / "tests" / "fakes").glob("*.py"))]
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def last_lua_pass() -> ModuleResult:
    """The verdicts of the last Lua pass, whatever changed since (for a report written without running)."""
    cache = ROOT / "var" / "mutation" / "lua.json"
    rows = json.loads(cache.read_text())["results"] if cache.exists() else []
    return ModuleResult.of("lua", SCRIPT, [MutantResult(*row) for row in rows])


def run_lua_pass(*, timeout_s: float) -> ModuleResult:
    """Run every applicable Lua mutant (or reuse the last verdicts while nothing they depend on changed)."""
    cache = ROOT / "var" / "mutation" / "lua.json"
    fingerprint = _fingerprint()
    if cache.exists():
        saved = json.loads(cache.read_text())
        if saved["fingerprint"] == fingerprint:
            print("  lua: unchanged since the last pass, verdicts reused", flush=True)
            return ModuleResult.of("lua", SCRIPT, [MutantResult(*row) for row in saved["results"]])
    result_rows = _run_all(timeout_s)
    if result_rows is None:
        print("  lua: the Redis stream-log tests fail on the unmutated script (is Redis up?): pass skipped", flush=True)
        return ModuleResult.of("lua", SCRIPT, [], left_out=["(every test: they fail on the unmutated script)"])
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"fingerprint": fingerprint, "results": [list(r) for r in result_rows]}))
    return ModuleResult.of("lua", SCRIPT, [MutantResult(*row) for row in result_rows])


def _run_all(timeout_s: float) -> list[tuple[str, str, str]] | None:
    stage = _stage()
    script_path = stage / SCRIPT
    original = script_path.read_text()
    if _run_tests(stage, 300) != "survived":
        return None
    results: list[tuple[str, str, str]] = []
    stale: list[str] = []
    for mutant in LUA_MUTANTS:
        mutated = apply(original, mutant)
        if mutated is None:
            stale.append(mutant.id)
            continue
        script_path.write_text(mutated)
        status = _run_tests(stage, min(300.0, timeout_s))
        diff = f"@@ {mutant.section} @@\n-{mutant.original}\n+{mutant.mutated}"
        results.append((f"lua:{mutant.section}:{mutant.id}", status, diff))
        print(f"  lua {mutant.id}: {status}", flush=True)
    script_path.write_text(original)
    if stale:
        print(f"  lua: {len(stale)} stale mutants (text not in the script): {', '.join(stale)}", flush=True)
    return results
