"""What is mutated and which tests may kill it: one entry per stream-core module and the attempt runner, plus the
Lua script.

The test mapping keeps each module's run bounded: only the files that exercise the module, with the hypothesis
state machines scaled down (``SWITCHYARD_HYPOTHESIS_SCALE``) and Redis-backed tests left to the Lua pass.
"""

from __future__ import annotations

from typing import Final

from attrs import frozen

__all__ = ["LUA_TESTS", "PY_TARGETS", "PyTarget"]

_STREAM_UNIT: Final = ("tests/unit/test_streaming_*.py", "tests/unit/test_sequence_*.py")


@frozen
class PyTarget:
    """A Python module to mutate, the test files (globs) that exercise it, and optionally which functions."""

    key: str
    path: str
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()
    """Mangled function names (``x_name`` or ``xǁClassǁmethod``) to mutate; empty: the whole module."""


PY_TARGETS: Final = (  # smallest first, so a run cut short by its budget still reports most modules
    PyTarget(
        "services.streaming.publisher",
        "services/streaming/publisher.py",
        (*_STREAM_UNIT, "tests/unit/test_chat_silent_vendor.py"),  # expect_silence matters to chat producers
    ),
    PyTarget("services.streaming.runs", "services/streaming/runs.py", _STREAM_UNIT),
    PyTarget("domain.streaming", "domain/streaming.py", (*_STREAM_UNIT, "tests/contract/test_stream_log*.py")),
    PyTarget(
        "adapters.memory.stream_log",
        "adapters/memory/stream_log.py",
        ("tests/contract/test_stream_log*.py", "tests/unit/test_streaming_*.py"),
    ),
    PyTarget(
        "services.attempts",
        "services/attempts.py",
        (
            "tests/unit/test_attempt_runner.py",
            "tests/unit/test_chat_service.py",
            "tests/unit/test_chat_streaming.py",
            "tests/unit/test_chat_cut_billing.py",
            "tests/unit/test_chat_silent_vendor.py",
        ),
        functions=(
            "xǁAttemptRunnerǁcandidates",
            "xǁAttemptRunnerǁcall",
            "xǁAttemptRunnerǁrun",
            "xǁAttemptRunnerǁ_provider",
            "xǁAttemptRunnerǁ_outputs",
            "xǁAttemptRunnerǁ_retry_delay",
            "xǁAttemptRunnerǁ_account",
            "xǁRetryPolicyǁbackoff",
        ),
    ),
    PyTarget("services.streaming.manager", "services/streaming/manager.py", _STREAM_UNIT),
)

LUA_TESTS: Final = ("tests/contract/test_stream_log*.py", "tests/integration/test_redis_stream_log*.py")
"""The Redis stream-log tests (globs) each Lua mutant is run against: the contract suites' Redis half, leases too."""
