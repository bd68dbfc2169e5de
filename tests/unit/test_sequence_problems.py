"""The test oracle itself: ``sequence_problems`` must flag every broken ordering rule (and nothing in a sound one)."""

from __future__ import annotations

import pytest

from domain.streaming import StreamEvent, sequence_problems
from domain.types import StreamId

SID = StreamId("st_oracle")


def seq(*items: tuple[int, str]) -> list[StreamEvent]:
    return [StreamEvent(SID, n, kind) for n, kind in items]


@pytest.mark.parametrize(
    ("events", "after"),
    [
        (seq(), 0),
        (seq((1, "text"), (2, "text"), (3, "done")), 0),
        (seq((5, "text"), (6, "error")), 4),
        (seq((4, "gap"), (5, "text"), (6, "cancelled")), 1),  # a gap may jump forward: what it names was trimmed
        (seq((3, "gap"), (4, "text")), 2),  # the smallest gap: one event lost, the gap takes its seq
    ],
)
def test_sound_sequences_have_no_problems(events: list[StreamEvent], after: int) -> None:
    """Consecutive seqs from the cursor, at most one terminal and last, and forward gaps are all sound."""
    assert sequence_problems(events, after=after) == []


@pytest.mark.parametrize(
    ("events", "after", "expected"),
    [
        (seq((1, "text"), (3, "text")), 0, "expected seq 2, got 3"),
        (seq((2, "text")), 0, "expected seq 1, got 2"),
        (seq((1, "text")), 1, "expected seq 2, got 1"),
        (seq((1, "text"), (1, "text")), 0, "expected seq 2, got 1"),
        (seq((1, "text"), (2, "done"), (3, "text")), 0, "seq 3 (text) follows the terminal event"),
        (seq((1, "done"), (2, "cancelled")), 0, "seq 2 (cancelled) follows the terminal event"),
        (seq((1, "error"), (2, "gap")), 0, "seq 2 (gap) follows the terminal event"),
        (seq((1, "text"), (2, "text"), (1, "gap")), 0, "gap at seq 1 goes backwards (expected >= 3)"),
        (seq((3, "gap")), 3, "gap at seq 3 goes backwards (expected >= 4)"),
    ],
)
def test_broken_sequences_are_named(events: list[StreamEvent], after: int, expected: str) -> None:
    """A hole, a repeat, a wrong start, anything after the terminal and a backwards gap are each reported."""
    problems = sequence_problems(events, after=after)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_every_problem_is_reported_not_only_the_first() -> None:
    """Two holes and an event after the end give three problems."""
    events = seq((1, "text"), (3, "text"), (5, "done"), (6, "text"))
    assert sequence_problems(events) == [
        "expected seq 2, got 3 (text)",
        "expected seq 4, got 5 (done)",
        "seq 6 (text) follows the terminal event",
    ]


def test_the_cursor_moves_past_a_hole() -> None:
    """After a hole the next expected seq follows the event seen, so one hole is one problem, not a cascade."""
    assert sequence_problems(seq((1, "text"), (3, "text"), (4, "text"))) == ["expected seq 2, got 3 (text)"]
