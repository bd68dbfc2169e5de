"""The SSE hold benchmark reads the server's own frames faithfully and calls a stream seq-complete only when it is:
ids 1..n with no gap or duplicate, data matching id and event, ``start`` first, exactly one terminal event, last."""

from __future__ import annotations

import pytest

from benchmarks.sse_hold import SseFrame, SseReader, sequence_problem
from domain.streaming import StreamEvent
from domain.types import StreamId
from entrypoints.http.streaming import sse_frame

_ID = StreamId("st_bench")
_HAPPY = ("start", "text", "text", "usage", "done")


def _wire(*types: str, seqs: list[int] | None = None) -> bytes:
    """The bytes Switchyard's SSE delivery sends for events of ``types`` (seqs 1..n unless given)."""
    numbers = seqs or list(range(1, len(types) + 1))
    return b"".join(
        sse_frame(StreamEvent(_ID, seq, kind, {"text": "w"})) for seq, kind in zip(numbers, types, strict=True)
    )


def _frames(*types: str, seqs: list[int] | None = None) -> list[SseFrame]:
    return SseReader().feed(_wire(*types, seqs=seqs))


def test_the_reader_yields_the_servers_frames_across_any_chunking() -> None:
    """Fed one byte at a time, with the retry hint and a keepalive comment, the reader yields each frame once."""
    raw = b"retry: 3000\n" + _wire(*_HAPPY[:2]) + b": keepalive\n\n" + _wire(*_HAPPY)[len(_wire(*_HAPPY[:2])) :]
    reader = SseReader()
    frames = [frame for index in range(len(raw)) for frame in reader.feed(raw[index : index + 1])]
    assert [(f.id, f.event) for f in frames] == [(str(n), kind) for n, kind in enumerate(_HAPPY, start=1)]
    assert frames == SseReader().feed(raw)


def test_the_reader_accepts_crlf_and_keeps_a_frame_without_an_id_id_less() -> None:
    """CR LF line ends parse like LF; a frame without an ``id`` line (a disconnect) has ``id`` None, not the last."""
    raw = b"id: 1\r\nevent: start\r\ndata: {}\r\n\r\nevent: disconnect\r\ndata: {}\r\n\r\nretry: 5\n\n"
    assert SseReader().feed(raw) == [SseFrame("1", "start", "{}"), SseFrame(None, "disconnect", "{}")]


def test_a_complete_stream_has_no_problem() -> None:
    """start, text, text, usage, done with seqs 1..5: seq-complete."""
    assert sequence_problem(_frames(*_HAPPY)) is None


@pytest.mark.parametrize(
    ("frames", "problem"),
    [
        ([], "no events"),
        (_frames(*_HAPPY, seqs=[1, 2, 4, 5, 6]), "gap: seq 4 after 2"),
        (_frames(*_HAPPY, seqs=[1, 2, 2, 3, 4]), "duplicate seq 2"),
        (_frames("start", "text", "usage"), "0 terminal events"),
        (_frames("start", "done", "done"), "2 terminal events"),
        (_frames("start", "done", "text"), "events after the terminal event"),
        (_frames("text", "start", "done"), "first event is 'text', not 'start'"),
        (_frames("start", "text", "error"), "ended with 'error', not 'done'"),
        ([*_frames("start"), SseFrame(None, "disconnect", "{}")], "'disconnect' without an id after seq 1"),
        (
            [*_frames("start"), SseFrame("2", "done", '{"type":"done","seq":3}')],
            "seq 2: data does not match id and event",
        ),
        (
            [*_frames("start"), SseFrame("2", "done", '{"type":"text","seq":2}')],
            "seq 2: data does not match id and event",
        ),
        ([*_frames("start"), SseFrame("2", "done", "not json")], "seq 2: data is not JSON"),
        ([*_frames("start"), SseFrame("x", "done", "{}")], "id 'x' is not a seq"),
    ],
)
def test_a_broken_stream_is_named_for_what_broke(frames: list[SseFrame], problem: str) -> None:
    """Each way a stream can be incomplete is caught, and the reason says which."""
    assert sequence_problem(frames) == problem


def test_the_expected_terminal_is_a_choice() -> None:
    """A stream that ends with ``cancelled`` is complete when ``cancelled`` is what the caller expects."""
    assert sequence_problem(_frames("start", "cancelled"), expect="cancelled") is None
