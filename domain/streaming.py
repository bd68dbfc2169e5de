"""Domain: streams, their events and outcomes, completion tokens, and the pure rules of event ordering.

A stream belongs to one customer, carries a *generation* (bumped each time a completion token is issued, so a
superseded producer is fenced out) and an ordered log of events numbered ``seq = 1, 2, 3 ...``. Exactly one terminal
event (``done``, ``error`` or ``cancelled``) ends it, and nothing may follow. A reader that asks for events after a
``seq`` that has been trimmed away receives a synthetic ``gap`` event first, never a silent hole.

A producer holds a renewable *lease* on its stream (``StreamInfo.lease_until``, wall-clock seconds): each write by the
current generation and each renewal extends it. When the lease has run out the producer is presumed dead (its
process was killed, its host lost) and whoever serves a reader ends the stream with ``producer_lost``, fenced like any
completion, so no reader waits for a terminal event that nobody will write.

An event may carry one binary *attachment* (``StreamEvent.data``: an audio chunk, later image or video bytes) beside
its JSON payload. It is kept as raw bytes in the domain and in every log (never base64: the Redis log stores it as its
own stream-entry field); only a transport that cannot carry bytes (SSE, a WebSocket client that did not opt in to
binary frames) encodes it. Attachments are bounded (``check_attachment``), and terminal events never carry one.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Final, Literal

from attrs import field, frozen

from domain.errors import CompletionOwnershipError, StreamingError
from domain.types import CustomerId, JsonValue, StreamId

__all__ = [
    "CANCELLED",
    "DEFAULT_MAX_ATTACHMENT_BYTES",
    "DONE",
    "ERROR",
    "GAP",
    "TERMINAL_TYPES",
    "AttachmentTooLargeError",
    "CompletionToken",
    "ConsumerLaggedError",
    "EventType",
    "LogRead",
    "Outcome",
    "StreamClosedError",
    "StreamEvent",
    "StreamInfo",
    "StreamStatus",
    "check_attachment",
    "check_publishable",
    "gap_event",
    "lost_event",
    "new_stream_id",
    "producer_lost",
    "sequence_problems",
    "status_for_terminal",
]

EventType = str
"""Open set: ``start``, ``text``, ``reasoning``, ``tool_call``, ``audio``, ``usage``, plus the terminals and ``gap``."""

START: Final = "start"
TEXT: Final = "text"
REASONING: Final = "reasoning"
TOOL_CALL: Final = "tool_call"
AUDIO: Final = "audio"
USAGE: Final = "usage"
DONE: Final = "done"
ERROR: Final = "error"
CANCELLED: Final = "cancelled"
GAP: Final = "gap"

TERMINAL_TYPES: Final = frozenset({DONE, ERROR, CANCELLED})
_RESERVED: Final = TERMINAL_TYPES | {GAP}

StreamStatus = Literal["open", "done", "error", "cancelled"]

DEFAULT_MAX_ATTACHMENT_BYTES: Final = 1024 * 1024
"""The default bound on one event's attachment (``streaming.max_attachment_bytes``): media chunks, not whole files."""


class StreamClosedError(StreamingError):
    """An event was published to a stream that has already ended (its terminal event is written)."""

    code = "stream_closed"

    def __init__(self, stream_id: str, message: str = "the stream has already ended") -> None:
        super().__init__("publish", message, context={"stream_id": stream_id})


class ConsumerLaggedError(StreamingError):
    """A consumer fell further behind the stream than its buffer allows; it was dropped and may resume."""

    code = "consumer_lagged"
    retryable = True

    def __init__(self, stream_id: str, after: int, lag: int, limit: int) -> None:
        super().__init__(
            "deliver",
            f"consumer fell {lag} events behind (limit {limit}); resume after seq {after}",
            context={"stream_id": stream_id, "after": after, "lag": lag, "limit": limit},
        )
        self.after = after


class AttachmentTooLargeError(StreamingError):
    """An event's binary attachment is larger than the stream log takes; nothing was written (split the media)."""

    code = "attachment_too_large"

    def __init__(self, stream_id: str, size: int, limit: int) -> None:
        super().__init__(
            "publish",
            f"an event attachment of {size} bytes exceeds the limit of {limit} bytes",
            context={"stream_id": stream_id, "size_bytes": size, "limit_bytes": limit},
        )
        self.size = size
        self.limit = limit


def new_stream_id() -> StreamId:
    """An unguessable stream id (128 random bits, URL-safe)."""
    return StreamId("st_" + secrets.token_urlsafe(16))


def _data_repr(data: bytes | None) -> str:
    return "None" if data is None else f"<{len(data)} bytes>"


@frozen
class StreamEvent:
    """One event of a stream. ``seq`` is 1-based and gap-free within the stream's log.

    ``data`` is the optional binary attachment (raw bytes, ``None`` when the event has none; ``b""`` is an attachment
    of length 0). Its repr shows only its length.
    """

    stream_id: StreamId
    seq: int
    type: EventType
    payload: Mapping[str, JsonValue] = field(factory=dict)
    ts: float = 0.0
    data: bytes | None = field(default=None, repr=_data_repr)

    @property
    def terminal(self) -> bool:
        """Whether this event ends the stream."""
        return self.type in TERMINAL_TYPES


@frozen
class StreamInfo:
    """What the log knows about a stream besides its events."""

    stream_id: StreamId
    owner: CustomerId
    kind: str = "chat"
    generation: int = 0
    status: StreamStatus = "open"
    last_seq: int = 0
    created_at: float = 0.0
    last_seen: float = 0.0
    meta: Mapping[str, JsonValue] = field(factory=dict)
    lease_until: float = 0.0
    """When the producer's lease runs out (wall-clock seconds; 0: no producer holds one)."""

    @property
    def finished(self) -> bool:
        """Whether the terminal event has been written."""
        return self.status != "open"

    def lease_lapsed(self, now: float) -> bool:
        """Whether an open stream's producer let its lease run out (a hint: the log decides, with its own clock)."""
        return not self.finished and 0 < self.lease_until < now


@frozen
class LogRead:
    """A read from a cursor: the events after it (at most the limit asked), and where the log stands.

    ``first_seq`` is the oldest retained seq (0 when the log holds no event yet); if it is beyond ``after + 1`` the
    events in between were trimmed. ``last_seq`` is the newest seq written.
    """

    events: tuple[StreamEvent, ...]
    first_seq: int
    last_seq: int
    status: StreamStatus
    lease_until: float = 0.0
    """The producer's lease as the log knows it (0: none, or not known to this read)."""

    def missing_after(self, after: int) -> bool:
        """Whether events right after ``after`` were trimmed away."""
        return self.first_seq > after + 1

    def lease_lapsed(self, now: float) -> bool:
        """Whether the stream is open and its producer's lease has run out (a hint, as ``StreamInfo.lease_lapsed``)."""
        return self.status == "open" and 0 < self.lease_until < now


@frozen
class CompletionToken:
    """The right to end a stream: held by the dispatcher, never handed to producers.

    ``generation`` fences superseded holders; ``secret`` makes the token unforgeable (compared in constant time).
    """

    stream_id: StreamId
    generation: int
    secret: str = field(repr=False)

    @classmethod
    def issue(cls, stream_id: StreamId, generation: int) -> CompletionToken:
        """A fresh token for ``generation``."""
        return cls(stream_id, generation, secrets.token_urlsafe(16))


@frozen
class Outcome:
    """How a stream ends: the terminal event's type and payload."""

    type: Literal["done", "error", "cancelled"]
    payload: Mapping[str, JsonValue] = field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.type not in TERMINAL_TYPES:
            raise ValueError(f"not a terminal event type: {self.type!r}")

    @classmethod
    def done(cls, payload: Mapping[str, JsonValue] | None = None) -> Outcome:
        """Normal end; ``payload`` is the producer's result."""
        return cls(DONE, dict(payload or {}))

    @classmethod
    def error(cls, code: str, message: str, *, retryable: bool = False, **extra: JsonValue) -> Outcome:
        """Failed end with a typed code, a safe message and whether a retry may succeed."""
        return cls(ERROR, {"code": code, "message": message, "retryable": retryable, **extra})

    @classmethod
    def cancelled(cls, reason: str) -> Outcome:
        """Ended on purpose before the producer finished (``client``, ``grace``, ``shutdown`` ...)."""
        return cls(CANCELLED, {"reason": reason})


def producer_lost(lease_s: float) -> Outcome:
    """The end of a stream whose producer stopped renewing its lease: retryable, the request may be sent again."""
    return Outcome.error(
        "producer_lost",
        f"the process producing this stream stopped answering (no lease renewal for {lease_s:g} s)",
        retryable=True,
    )


def status_for_terminal(event_type: str) -> StreamStatus:
    """The stream status a terminal event type leads to."""
    if event_type == DONE:
        return "done"
    if event_type == ERROR:
        return "error"
    if event_type == CANCELLED:
        return "cancelled"
    raise ValueError(f"not a terminal event type: {event_type!r}")


def check_publishable(event_type: str) -> None:
    """Producers may publish any type except the terminals and ``gap`` (the ownership rule, and the log's own)."""
    if event_type in _RESERVED:
        raise CompletionOwnershipError(
            f"publishers cannot emit {event_type!r}: only the completion token holder ends a stream",
            context={"type": event_type},
        )
    if not event_type:
        raise ValueError("event type must not be empty")


def check_attachment(stream_id: str, data: bytes | None, limit: int) -> None:
    """Refuse an attachment longer than ``limit`` bytes with ``AttachmentTooLargeError`` (``None``: no attachment)."""
    if data is not None and len(data) > limit:
        raise AttachmentTooLargeError(stream_id, len(data), limit)


def gap_event(stream_id: StreamId, after: int, first_seq: int, ts: float) -> StreamEvent:
    """The synthetic event telling a reader that seqs ``after + 1 .. first_seq - 1`` were trimmed.

    It carries ``seq = first_seq - 1`` so a client that resumes from it gets exactly what remains.
    """
    return StreamEvent(
        stream_id, first_seq - 1, GAP, {"from_seq": after + 1, "to_seq": first_seq - 1, "reason": "trimmed"}, ts
    )


def lost_event(stream_id: StreamId, after: int, code: str, message: str, ts: float) -> StreamEvent:
    """A terminal ``error`` made for one reader when the log itself lost the stream (or stayed unreachable).

    Nothing else can end such a stream for that reader: the log holds no terminal event to deliver. It carries
    ``seq = after + 1`` so the reader's sequence stays gap-free, and says it is ``synthetic`` (not in the log).
    """
    payload: dict[str, JsonValue] = {"code": code, "message": message, "retryable": True, "synthetic": True}
    return StreamEvent(stream_id, after + 1, ERROR, payload, ts)


def sequence_problems(events: Iterable[StreamEvent], *, after: int = 0) -> list[str]:
    """Every ordering rule ``events`` (as one consumer saw them after ``after``) breaks; empty when sound.

    Rules: seqs strictly increase and are gap-free except right after a ``gap`` event; at most one terminal event,
    and it is the last.
    """
    problems: list[str] = []
    expected = after + 1
    seen_terminal = False
    for event in events:
        if seen_terminal:
            problems.append(f"seq {event.seq} ({event.type}) follows the terminal event")
        if event.type == GAP:
            if event.seq < expected:
                problems.append(f"gap at seq {event.seq} goes backwards (expected >= {expected})")
        elif event.seq != expected:
            problems.append(f"expected seq {expected}, got {event.seq} ({event.type})")
        expected = event.seq + 1
        seen_terminal = seen_terminal or event.terminal
    return problems
