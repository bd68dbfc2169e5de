"""Surviving mutants judged equivalent (no test can tell them from the original), each with the reason.

A survivor matches an entry when its module and function match and its diff adds a line containing ``added`` (and,
when given, removes one containing ``removed``). Matching on text rather than mutmut's numbering keeps an entry valid
while the code around it changes; an entry that matches nothing any more is harmless.
"""

from __future__ import annotations

from typing import Final

from attrs import frozen

__all__ = ["EQUIVALENT", "Equivalent", "why_equivalent"]


@frozen
class Equivalent:
    """One equivalent mutant: where, what the mutated line looks like, and why no test can kill it."""

    path: str
    function: str
    added: str
    reason: str
    removed: str = ""


_LONGER = (
    "a longer random part (17 or 32 bytes instead of 16) is just as unique and unguessable; nothing depends on the "
    "exact length"
)
_TASK_NAME = "the producer task's name only labels it in asyncio's debug output; nothing reads it"
_SEEN = (
    "last_seen is 0 (never touched) or a wall-clock timestamp, never in (0, 1]; and with 0, time.time() - 0 is never "
    "inside the window, so the guard only saves the subtraction"
)
_WALL_EDGE = (
    "differs only when the touch is exactly `window` seconds old on the wall clock, which no test can arrange "
    "(the check reads time.time() directly)"
)

_DEAD = "Run.owner and Run.kind are stored but never read (the log holds the owner and kind the manager checks)"
_CAUGHT_UP = (
    "a caught-up read carries no events, and its first_seq only matters through missing_after(cursor): "
    "1 > cursor + 1 never holds for a cursor >= 0, just as 0 > cursor + 1 does not"
)

EQUIVALENT: Final[tuple[Equivalent, ...]] = (
    Equivalent(
        "domain/streaming.py",
        "x_sequence_problems",
        "seen_terminal = None",
        "None and False behave alike in `if seen_terminal` and in `seen_terminal or event.terminal`",
        removed="seen_terminal = False",
    ),
    Equivalent("services/streaming/runs.py", "xǁRunǁ__init__", "self.owner = None", _DEAD),
    Equivalent("services/streaming/runs.py", "xǁRunǁ__init__", "self.kind = None", _DEAD),
    Equivalent("services/streaming/runs.py", "xǁRunǁtail_after", 'LogRead((), 1, self.tail_last, "open")', _CAUGHT_UP),
    Equivalent(
        "services/streaming/runs.py",
        "xǁStreamingConfigǁsweep_interval_s",
        "default=5.0",
        "with every limit off the interval is min(1.0, 5/4) = 1.0, the same as min(1.0, 4/4)",
    ),
    Equivalent("domain/streaming.py", "x_new_stream_id", "token_urlsafe(None)", _LONGER),
    Equivalent("domain/streaming.py", "x_new_stream_id", "token_urlsafe(17)", _LONGER),
    Equivalent("domain/streaming.py", "xǁCompletionTokenǁissue", "token_urlsafe(None)", _LONGER),
    Equivalent("domain/streaming.py", "xǁCompletionTokenǁissue", "token_urlsafe(17)", _LONGER),
    Equivalent("services/streaming/manager.py", "xǁStreamingManagerǁstart", "name=None", _TASK_NAME),
    Equivalent("services/streaming/manager.py", "xǁStreamingManagerǁstart", "producer), )", _TASK_NAME),
    Equivalent("services/streaming/manager.py", "xǁStreamingManagerǁstart", "XXstream-producer:", _TASK_NAME),
    Equivalent("services/streaming/manager.py", "xǁStreamingManagerǁ_read_elsewhere", "info.last_seen > 1", _SEEN),
    Equivalent("services/streaming/manager.py", "xǁStreamingManagerǁ_read_elsewhere", "info.last_seen >= 0", _SEEN),
    Equivalent("services/streaming/manager.py", "xǁStreamingManagerǁ_read_elsewhere", "<= window", _WALL_EDGE),
    Equivalent(
        "services/attempts.py",
        "xǁAttemptRunnerǁcall",
        'result: Output[T] | None = ""',
        "only a type annotation's initial value: every Finished is preceded by the Output that sets it",
    ),
    Equivalent(
        "services/attempts.py",
        "xǁAttemptRunnerǁrun",
        'last_error: ServiceError | None = ""',
        "read only after an attempt failed, which always sets it first",
    ),
    Equivalent(
        "services/attempts.py",
        "xǁAttemptRunnerǁ_account",
        'increment("provider_requests_total", outcome=outcome',
        "1.0 is the increment's default amount: dropping it changes nothing",
    ),
)


def why_equivalent(path: str, function: str, diff: str) -> str | None:
    """The reason a survivor is equivalent, or ``None`` when it is a real gap in the tests."""
    added = [line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    removed = [line[1:] for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    for entry in EQUIVALENT:
        if entry.path != path or entry.function != function:
            continue
        if any(entry.added in line for line in added) and (
            not entry.removed or any(entry.removed in line for line in removed)
        ):
            return entry.reason
    return None
