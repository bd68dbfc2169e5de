"""The pure stream rules of ``domain/streaming.py``: ids, outcomes, statuses, who may publish what, gaps, and what
the streaming errors tell a client (the stage, the stream, and where to resume)."""

from __future__ import annotations

import pytest

from domain.errors import CompletionOwnershipError
from domain.streaming import (
    ConsumerLaggedError,
    LogRead,
    Outcome,
    StreamClosedError,
    StreamInfo,
    StreamStatus,
    check_publishable,
    gap_event,
    lost_event,
    new_stream_id,
    producer_lost,
    status_for_terminal,
)
from domain.types import CustomerId, StreamId

SID = StreamId("st_domain")


def test_stream_ids_are_prefixed_and_never_repeat() -> None:
    """Every id starts with ``st_`` and carries enough randomness never to collide."""
    ids = [new_stream_id() for _ in range(500)]
    assert all(i.startswith("st_") and len(i) >= 3 + 22 for i in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("first_seq", "after", "missing"),
    [(0, 0, False), (1, 0, False), (2, 0, True), (6, 5, False), (7, 5, True), (3, 5, False)],
)
def test_missing_after_is_exact(first_seq: int, after: int, missing: bool) -> None:
    """Events are missing right after the cursor exactly when the oldest retained one is beyond cursor + 1."""
    assert LogRead((), first_seq, 10, "open").missing_after(after) is missing


def test_outcomes_carry_their_type_and_payload() -> None:
    """done keeps the result, error is not retryable unless said so and keeps extra fields, cancelled names why."""
    result = {"finish": "stop"}
    done = Outcome.done(result)
    result["finish"] = "changed"
    assert (done.type, done.payload) == ("done", {"finish": "stop"})
    assert Outcome.done().payload == {}
    assert Outcome.error("c", "m").payload == {"code": "c", "message": "m", "retryable": False}
    assert Outcome.error("c", "m", retryable=True, at=3).payload == {
        "code": "c",
        "message": "m",
        "retryable": True,
        "at": 3,
    }
    assert (Outcome.cancelled("grace").type, Outcome.cancelled("grace").payload) == ("cancelled", {"reason": "grace"})
    with pytest.raises(ValueError, match="terminal"):
        Outcome("text")  # type: ignore[arg-type]


@pytest.mark.parametrize(("event_type", "status"), [("done", "done"), ("error", "error"), ("cancelled", "cancelled")])
def test_each_terminal_type_leads_to_its_own_status(event_type: str, status: str) -> None:
    """done, error and cancelled map to the statuses of the same name."""
    assert status_for_terminal(event_type) == status


@pytest.mark.parametrize("event_type", ["text", "gap", "", "open"])
def test_other_types_have_no_terminal_status(event_type: str) -> None:
    """Anything else is not a terminal event type."""
    with pytest.raises(ValueError, match="terminal"):
        status_for_terminal(event_type)


@pytest.mark.parametrize("event_type", ["start", "text", "reasoning", "tool_call", "audio", "usage", "custom"])
def test_producers_may_publish_any_ordinary_type(event_type: str) -> None:
    """The open set of event types is publishable."""
    check_publishable(event_type)


@pytest.mark.parametrize("event_type", ["done", "error", "cancelled", "gap"])
def test_terminals_and_gap_are_reserved(event_type: str) -> None:
    """A terminal or ``gap`` is refused with CompletionOwnershipError naming the type and the stage."""
    with pytest.raises(CompletionOwnershipError) as refused:
        check_publishable(event_type)
    assert refused.value.context == {"stage": "complete", "type": event_type}
    assert repr(event_type) in refused.value.message


def test_an_empty_type_is_refused() -> None:
    """An event needs a type."""
    with pytest.raises(ValueError, match="empty"):
        check_publishable("")


def test_a_gap_names_the_lost_seqs_and_sits_just_before_what_remains() -> None:
    """gap(after=2, first_seq=7) covers 3..6, carries seq 6 and the stream and time given."""
    gap = gap_event(SID, 2, 7, 12.5)
    assert (gap.stream_id, gap.seq, gap.type, gap.ts) == (SID, 6, "gap", 12.5)
    assert gap.payload == {"from_seq": 3, "to_seq": 6, "reason": "trimmed"}
    assert not gap.terminal


def test_stream_closed_names_the_stream_and_the_stage() -> None:
    """StreamClosedError is a publish-stage error naming the stream, with a default message."""
    error = StreamClosedError(SID)
    assert (error.code, error.stage, error.message) == ("stream_closed", "publish", "the stream has already ended")
    assert error.context == {"stage": "publish", "stream_id": SID}
    assert StreamClosedError(SID, "custom").message == "custom"


def test_a_lagging_consumer_is_told_where_to_resume() -> None:
    """ConsumerLaggedError is retryable and carries the cursor to resume after, the lag and the limit."""
    error = ConsumerLaggedError(SID, 40, 1500, 1024)
    assert (error.code, error.retryable, error.stage, error.after) == ("consumer_lagged", True, "deliver", 40)
    assert error.context == {"stage": "deliver", "stream_id": SID, "after": 40, "lag": 1500, "limit": 1024}
    assert error.message == "consumer fell 1500 events behind (limit 1024); resume after seq 40"


@pytest.mark.parametrize(
    ("status", "lease_until", "lapsed"),
    [
        ("open", 0.0, False),
        ("open", 99.0, True),
        ("open", 100.0, False),
        ("open", 0.5, True),
        ("done", 50.0, False),
        ("error", 50.0, False),
    ],
)
def test_a_lease_has_lapsed_only_on_an_open_stream_strictly_before_now(
    status: StreamStatus, lease_until: float, lapsed: bool
) -> None:
    """At now = 100: lapsed when open and 0 < lease_until < 100; no lease (0) or an ended stream never lapses."""
    assert StreamInfo(SID, CustomerId("a"), status=status, lease_until=lease_until).lease_lapsed(100.0) is lapsed
    assert LogRead((), 0, 0, status, lease_until).lease_lapsed(100.0) is lapsed


def test_a_lost_stream_ends_for_its_reader_with_a_synthetic_retryable_error() -> None:
    """lost_event continues the reader's sequence with a retryable error marked synthetic, at the time given."""
    event = lost_event(SID, 7, "stream_lost", "gone", 12.5)
    assert (event.stream_id, event.seq, event.type, event.ts) == (SID, 8, "error", 12.5)
    assert event.payload == {"code": "stream_lost", "message": "gone", "retryable": True, "synthetic": True}


def test_a_lost_producer_is_a_retryable_error_naming_the_lease() -> None:
    """producer_lost ends a stream with a retryable error saying how long the lease went unrenewed."""
    outcome = producer_lost(2.5)
    assert outcome.payload == {
        "code": "producer_lost",
        "message": "the process producing this stream stopped answering (no lease renewal for 2.5 s)",
        "retryable": True,
    }
