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

# --- stream core: adapters/memory/stream_log.py and services/streaming/manager.py (issue 19) -------------------
_SLACK = (
    "event counts are integers: len > m + m // 8 and len > m + m / 8 hold for the same lengths (the fraction is below "
    "one), and max(16, ...) keeps the larger bound either way"
)
_ONE_BYTE = (
    "a finished stream holds at least its terminal event, estimated at _EVENT_OVERHEAD (240) bytes or more, so a bound "
    "of 0 or of 1 byte evicts it alike"
)
_POP = (
    "every caller drops a stream that is in _streams (_live and _purge found it there; a finished stream stays there "
    "until this very drop), so the default of pop is never used"
)
_EMPTY_SLICE = "with limit 0 the slice events[start:start] is empty too, so `>= 0` returns the same empty tuple"
_NO_EXCESS = "with excess 0, deleting events[:0] and adding 0 to the offset change nothing"
_RETRY_AT = (
    "retry_at is read only for a run with a pending outcome (sweep), and _finish sets pending and retry_at together, "
    "so the initial value is never read"
)
_CAST = "typing.cast does nothing at run time; its first argument is only read by the type checker"
_FALSY = "use_tail is only tested for truth, where None and False are alike"
_WAIT_PATH = (
    "on the wait path outage_since is always None: a pass reaches the wait only after a successful read, which has "
    "just reset it, so passing None is passing what is there"
)
_SEQ_GUARD = (
    "no read yields a seq equal to the cursor (the StreamLog contract, pinned for both logs, and Run.tail_after return "
    "only seq > after); the filter is a guard against a log that breaks the contract"
)
_IDLE = (
    "idle_since is read only when no consumer is attached (sweep tests `run.consumers or ...` first), and the detach "
    "that leaves none overwrites it before that; '' and None are never read"
)
_REASON_LOGGED = "the reason passed to _abandon only labels its log line (stream_abandoned); nothing else reads it"
_RETRYABLE_DEFAULT = "Outcome.error's retryable defaults to False: leaving the argument out passes the same value"
_CONSUMERS = (
    "idle_since is None exactly while a consumer is attached (_attach sets it, the detach leaving none sets it), so "
    "`consumers or idle_since is None` and `consumers and idle_since is None` agree on every run"
)
_LEFT_ZERO = (
    "differs only when the deadline is exactly now: the extra pass waits with timeout min(0, poll) = 0 and returns at "
    "once, then the loop ends as the clock moves; the streams end the same way"
)
_FIRST_COMPLETED = (
    "the loop waits again until every producer has ended or the deadline passed, so returning at the first completion "
    "or the last ends the drain at the same moment with the same streams cut"
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
    # adapters/memory/stream_log.py
    Equivalent("adapters/memory/stream_log.py", "xǁInMemoryStreamLogǁ__init__", "max_events / 8", _SLACK),
    Equivalent(
        "adapters/memory/stream_log.py", "xǁInMemoryStreamLogǁ__init__", "max(1, max_finished_bytes)", _ONE_BYTE
    ),
    Equivalent("adapters/memory/stream_log.py", "xǁInMemoryStreamLogǁ_drop", "self._streams.pop(stream_id, )", _POP),
    Equivalent("adapters/memory/stream_log.py", "xǁInMemoryStreamLogǁread", "if limit >= 0", _EMPTY_SLICE),
    Equivalent("adapters/memory/stream_log.py", "xǁ_Streamǁdrop_oldest", "if excess >= 0", _NO_EXCESS),
    # services/streaming/runs.py
    Equivalent("services/streaming/runs.py", "xǁRunǁ__init__", "self.retry_at = None", _RETRY_AT),
    Equivalent("services/streaming/runs.py", "xǁRunǁ__init__", "self.retry_at = 1.0", _RETRY_AT),
    # services/streaming/manager.py
    Equivalent("services/streaming/manager.py", "xǁStreamingManagerǁsubscribe", "cast(None,", _CAST),
    Equivalent("services/streaming/manager.py", "xǁStreamingManagerǁwatch", "use_tail = None", _FALSY),
    Equivalent(
        "services/streaming/manager.py",
        "xǁStreamingManagerǁwatch",
        "outage_since = await self._ride_out(exc, None)",
        _WAIT_PATH,
        removed="outage_since = await self._ride_out(exc, outage_since)",
    ),
    Equivalent("services/streaming/manager.py", "xǁStreamingManagerǁwatch", "if e.seq >= cursor", _SEQ_GUARD),
    Equivalent("services/streaming/manager.py", "xǁStreamingManagerǁ_attach", 'run.idle_since = ""', _IDLE),
    Equivalent(
        "services/streaming/manager.py", "xǁStreamingManagerǁ_renew", "self._abandon(run, None)", _REASON_LOGGED
    ),
    Equivalent("services/streaming/manager.py", "xǁStreamingManagerǁ_renew", '"XXfencedXX"', _REASON_LOGGED),
    Equivalent(
        "services/streaming/manager.py",
        "xǁStreamingManagerǁ_drive",
        '"the producer failed unexpectedly", )',
        _RETRYABLE_DEFAULT,
    ),
    Equivalent(
        "services/streaming/manager.py",
        "xǁStreamingManagerǁsweep",
        "run.consumers and run.idle_since is None",
        _CONSUMERS,
    ),
    Equivalent("services/streaming/manager.py", "xǁStreamingManagerǁdrain", "loop.time()) >= 0 and", _LEFT_ZERO),
    Equivalent(
        "services/streaming/manager.py",
        "xǁStreamingManagerǁdrain",
        "timeout=min(left, self._config.poll_s), )",
        _FIRST_COMPLETED,
    ),
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
    Equivalent(
        "services/attempts.py",
        "xǁAttemptRunnerǁ_outputs",
        'aclose = getattr(source, "aclose", )',
        "the source is always an async generator (AttemptBody.outputs), which has aclose: the default is never used",
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
