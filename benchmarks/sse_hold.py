"""Benchmark helper for ``bench_sse_hold``: the load client and the bare baseline server (each run as its own process),
and the pure SSE rules they share with the unit tests.

``python -m benchmarks.sse_hold client --port P --streams N`` (token in ``SSE_HOLD_TOKEN``) opens streamed chats
(``POST /api/v1/chat``, ``stream: true``, model ``fake/echo``) over raw asyncio connections, h11 for HTTP/1.1 and its
chunked body (no client pool, little client CPU). A warm-up wave of short streams that end ``done``; then, after a
``go`` line on stdin, N streams whose fake vendor sends one word and then nothing (``fake_hang_after: 1``): when the
last has its first ``text`` event all N are mid-flight and idle at once. After a ``release`` line every held stream is
cancelled (``POST /api/v1/streams/{id}/cancel`` over a few keep-alive connections) and read to its end: ``cancelled``
is its one terminal event. A hold released by a request, not by a clock: a slow or busy machine opens the streams
more slowly, but they are all still held at the end. One JSON line per phase (``warm``, ``held``, ``done``) on
stdout tells the orchestrator when to read the server's RSS.

``python -m benchmarks.sse_hold bare --port P`` is the baseline: a bare asyncio server (uvloop, as ``switchyard serve``
uses) that answers the same requests with the same frames, so the same client measures both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Final

import h11
from attrs import define, field, frozen

from domain.streaming import TERMINAL_TYPES

__all__ = ["TERMINAL", "SseFrame", "SseReader", "raise_nofile_limit", "sequence_problem"]

TERMINAL: Final = TERMINAL_TYPES
PROMPT: Final = "one two"  # two words: the fake vendor sends the first at once, then pauses or goes silent


# --- pure rules (unit tested) ------------------------------------------------------------------------------------


@frozen
class SseFrame:
    """One dispatched SSE event: its own ``id`` line (None when it had none), ``event`` and ``data``."""

    id: str | None
    event: str
    data: str


class SseReader:
    """Incremental SSE parser: bytes in, dispatched frames out (fields, comments, blank-line dispatch; CR LF or LF).

    Unlike a browser's EventSource, ``id`` does not carry over to later frames: the check needs to know that each
    frame carried its own (a ``disconnect`` frame has none on purpose).
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._id: str | None = None
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SseFrame]:
        """The frames completed by ``chunk`` (a frame may span chunks, a chunk may hold several frames)."""
        *lines, self._buffer = (self._buffer + chunk).split(b"\n")
        frames: list[SseFrame] = []
        for raw in lines:
            line = raw.removesuffix(b"\r").decode()
            if not line:
                if self._data:  # the spec dispatches only frames with data (a lone ``retry:`` is not an event)
                    frames.append(SseFrame(self._id, self._event or "message", "\n".join(self._data)))
                self._id, self._event, self._data = None, "", []
                continue
            if line.startswith(":"):  # a keepalive comment
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                self._id = value
            elif name == "event":
                self._event = value
            elif name == "data":
                self._data.append(value)
        return frames


def sequence_problem(frames: Sequence[SseFrame], *, expect: str = "done") -> str | None:
    """Why a stream's frames are not seq-complete, or None when they are.

    Seq-complete: every frame has an id, the ids are 1..n with no gap or duplicate, each frame's JSON ``seq`` and
    ``type`` match its id and event, the first is ``start``, and there is exactly one terminal event (done, error,
    cancelled), the last frame, of type ``expect``.
    """
    if not frames:
        return "no events"
    terminals = 0
    for index, frame in enumerate(frames, start=1):
        if frame.id is None:
            return f"{frame.event!r} without an id after seq {index - 1}"
        if not frame.id.isdigit():
            return f"id {frame.id!r} is not a seq"
        seq = int(frame.id)
        if seq < index:
            return f"duplicate seq {seq}"
        if seq > index:
            return f"gap: seq {seq} after {index - 1}"
        try:
            message = json.loads(frame.data)
        except ValueError:
            return f"seq {seq}: data is not JSON"
        if not isinstance(message, dict) or message.get("seq") != seq or message.get("type") != frame.event:
            return f"seq {seq}: data does not match id and event"
        terminals += frame.event in TERMINAL
    if frames[0].event != "start":
        return f"first event is {frames[0].event!r}, not 'start'"
    if terminals != 1:
        return f"{terminals} terminal events"
    if frames[-1].event not in TERMINAL:
        return "events after the terminal event"
    if frames[-1].event != expect:
        return f"ended with {frames[-1].event!r}, not {expect!r}"
    return None


def raise_nofile_limit() -> int:
    """Raise this process's open-file soft limit to the hard limit (children inherit it); returns the limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# --- the load client ---------------------------------------------------------------------------------------------


@define
class _Stream:
    reader: SseReader = field(factory=SseReader)
    frames: list[SseFrame] = field(factory=list)
    stream_id: str | None = None
    problem: str | None = None
    mid_at: float | None = None  # first text event: the stream is mid-flight
    ended_at: float | None = None  # terminal event
    held: bool = False  # mid-flight and not ended when the last stream of its wave became mid-flight
    expect: str = "done"
    deadline: asyncio.Timeout | None = None  # brought forward once the stream has been cancelled


@frozen
class _Target:
    host: str
    port: int
    token: str
    model: str

    def headers(self, length: int) -> list[tuple[str, str]]:
        return [
            ("Host", f"{self.host}:{self.port}"),
            ("Authorization", f"Bearer {self.token}"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(length)),
        ]


def _chat(target: _Target, metadata: dict[str, str]) -> tuple[h11.Request, bytes]:
    body = {"model": target.model, "messages": [{"role": "user", "content": PROMPT}], "stream": True}
    raw = json.dumps({**body, "metadata": metadata}).encode()
    return h11.Request(method="POST", target="/api/v1/chat", headers=target.headers(len(raw))), raw


def _send(connection: h11.Connection, writer: asyncio.StreamWriter, request: h11.Request, body: bytes) -> None:
    for part in (request, h11.Data(data=body), h11.EndOfMessage()):
        writer.write(connection.send(part) or b"")


async def _run_stream(
    target: _Target, stream: _Stream, metadata: dict[str, str], settle: Callable[[], None], deadline: float
) -> None:
    """One streamed chat, read to the end of the response; ``settle`` once it is mid-flight (or has failed)."""
    settled = False
    writer: asyncio.StreamWriter | None = None

    def mark() -> None:
        nonlocal settled
        if not settled:
            settled = True
            settle()

    try:
        async with asyncio.timeout_at(deadline) as stream.deadline:
            reader, writer = await asyncio.open_connection(target.host, target.port)
            connection = h11.Connection(h11.CLIENT)
            _send(connection, writer, *_chat(target, metadata))
            status = 0
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    stream.stream_id = dict(event.headers).get(b"x-stream-id", b"").decode() or None
                elif isinstance(event, h11.Data):
                    if status != 200:
                        stream.problem = f"status {status}: {bytes(event.data)[:200]!r}"
                        break
                    now = time.monotonic()
                    for frame in stream.reader.feed(bytes(event.data)):
                        stream.frames.append(frame)
                        if frame.event == "text" and stream.mid_at is None:
                            stream.mid_at = now
                            mark()
                        elif frame.event in TERMINAL:
                            stream.ended_at = now
                elif isinstance(event, h11.EndOfMessage):
                    if status != 200 and stream.problem is None:
                        stream.problem = f"status {status}"
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    stream.problem = "connection closed before the end of the response"
                    break
    except TimeoutError:
        stream.problem = "no end of the response by the deadline"
    except (OSError, h11.ProtocolError) as exc:
        stream.problem = f"{type(exc).__name__}: {exc}"
    finally:
        mark()
        if writer is not None:
            writer.close()


async def _open_wave(
    target: _Target, count: int, concurrency: int, metadata: dict[str, str], expect: str, deadline: float
) -> tuple[list[_Stream], list[asyncio.Task[None]], float]:
    """Open ``count`` streams, at most ``concurrency`` not yet mid-flight at a time; returns once every one is
    mid-flight (or has failed), with the reading tasks and the seconds that took. Marks the streams held then."""
    gate = asyncio.Semaphore(concurrency)
    all_mid = asyncio.Event()
    streams = [_Stream(expect=expect) for _ in range(count)]
    pending = count

    def settle() -> None:
        nonlocal pending
        pending -= 1
        gate.release()
        if pending == 0:
            all_mid.set()

    started = time.monotonic()
    tasks = []
    for stream in streams:
        await gate.acquire()
        tasks.append(asyncio.create_task(_run_stream(target, stream, metadata, settle, deadline)))
    await all_mid.wait()
    opened_s = time.monotonic() - started
    for stream in streams:
        stream.held = stream.mid_at is not None and stream.ended_at is None
    return streams, tasks, opened_s


async def _cancel_all(target: _Target, streams: Sequence[_Stream], connections: int, deadline: float) -> list[str]:
    """``POST /api/v1/streams/{id}/cancel`` for every held stream over ``connections`` keep-alive connections;
    returns what went wrong."""
    queue = [s.stream_id for s in streams if s.held and s.stream_id]
    errors: list[str] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(target.host, target.port)
        connection = h11.Connection(h11.CLIENT)
        try:
            while queue:
                path = f"/api/v1/streams/{queue.pop()}/cancel"
                _send(connection, writer, h11.Request(method="POST", target=path, headers=target.headers(0)), b"")
                while not isinstance(event := connection.next_event(), h11.EndOfMessage):
                    if event is h11.NEED_DATA:
                        connection.receive_data(await reader.read(65536))
                    elif isinstance(event, h11.Response) and event.status_code != 200:
                        errors.append(f"cancel answered {event.status_code}")
                    elif isinstance(event, h11.ConnectionClosed):
                        raise ConnectionError("the server closed a keep-alive connection")
                connection.start_next_cycle()
        finally:
            writer.close()

    try:
        async with asyncio.timeout_at(deadline):
            results = await asyncio.gather(*(worker() for _ in range(connections)), return_exceptions=True)
    except TimeoutError:
        return [*errors, f"{len(queue)} cancels not sent by the deadline"]
    errors += [f"cancel: {type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    return errors


def _emit(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


def _problem(stream: _Stream) -> str | None:
    return stream.problem or sequence_problem(stream.frames, expect=stream.expect)


def _problems(streams: Sequence[_Stream]) -> Counter[str]:
    """Failed streams by reason, numbers masked so that alike reasons group ("gap: seq N after N")."""
    return Counter(re.sub(r"\d+", "N", p)[:120] for s in streams if (p := _problem(s)) is not None)


async def _read_line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def _client(args: argparse.Namespace) -> None:
    """Warm up (short streams that end ``done``), wait for ``go``; open the held wave (streams whose vendor goes
    silent after the first word), report ``held``, wait for ``release``, cancel them all, report ``done``."""
    target = _Target(args.host, args.port, os.environ["SSE_HOLD_TOKEN"], args.model)
    deadline = time.monotonic() + args.timeout_s
    warm, tasks, warm_s = await _open_wave(
        target, args.warmup, args.concurrency, {"fake_delay_ms": "20"}, "done", deadline
    )
    await asyncio.gather(*tasks)
    _emit({"phase": "warm", "streams": args.warmup, "open_s": warm_s, "failed": _problems(warm).total()})
    await _read_line()  # "go": the server's RSS before has been read
    hang = {"fake_hang_after": "1"}  # the vendor sends the first word, then nothing until cancelled
    held, tasks, open_s = await _open_wave(target, args.streams, args.concurrency, hang, "cancelled", deadline)
    _emit({"phase": "held", "held": sum(s.held for s in held), "open_s": open_s})
    await _read_line()  # "release": the server's RSS while held has been read
    started = time.monotonic()
    cancel_errors = await _cancel_all(target, held, args.cancel_connections, deadline)
    ends = min(deadline, time.monotonic() + args.end_within_s)
    for stream, task in zip(held, tasks, strict=True):
        if not task.done() and stream.deadline is not None and (stream.deadline.when() or ends) > ends:
            stream.deadline.reschedule(ends)
    await asyncio.gather(*tasks)
    problems = _problems(held) + _problems(warm) + Counter(cancel_errors)
    _emit(
        {
            "phase": "done",
            "streams": args.streams,
            "held": sum(s.held for s in held),
            "held_complete": sum(1 for s in held if s.held and _problem(s) is None),
            "open_s": open_s,
            "release_s": time.monotonic() - started,
            "failed": problems.total(),
            "problems": dict(problems.most_common(5)),
        }
    )


# --- the bare baseline server ------------------------------------------------------------------------------------


def _frame(seq: int, kind: str, payload: dict[str, Any]) -> bytes:
    data = json.dumps({**payload, "type": kind, "seq": seq, "stream_id": "bare"}, separators=(",", ":"))
    text = f"id: {seq}\nevent: {kind}\ndata: {data}\n\n".encode()
    return b"%x\r\n%b\r\n" % (len(text), text)  # one HTTP/1.1 chunk


class _BareServer:
    """Switchyard's chat stream frames from a bare asyncio server: ``start`` and the first ``text`` at once, then
    (``fake_hang_after``) nothing until the stream's cancel request, or (``fake_delay_ms``) the rest after a pause.
    Cancel requests are answered on keep-alive connections, as Hypercorn does."""

    def __init__(self) -> None:
        self._cancels: dict[str, asyncio.Event] = {}
        self._count = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                body = await reader.readexactly(int(length.group(1)) if length else 0)
                target = head.split(b" ", 2)[1].decode()
                if target == "/api/v1/chat":
                    await self._stream(json.loads(body), writer)
                    return
                cancel = self._cancels.get(target.removeprefix("/api/v1/streams/").removesuffix("/cancel"))
                status = b"200 OK" if cancel is not None else b"404 Not Found"
                if cancel is not None:
                    cancel.set()
                writer.write(b"HTTP/1.1 %b\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}" % status)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    async def _stream(self, body: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        self._count += 1
        stream_id = f"bare{self._count}"
        cancelled = self._cancels[stream_id] = asyncio.Event()
        metadata = body.get("metadata", {})
        head = (
            b"content-type: text/event-stream\r\ntransfer-encoding: chunked\r\nx-stream-id: %b\r\n" % stream_id.encode()
        )
        writer.write(b"HTTP/1.1 200 OK\r\n" + head + b"\r\n")
        writer.write(_frame(1, "start", {"model": body.get("model")}) + _frame(2, "text", {"text": "one"}))
        try:
            if "fake_hang_after" in metadata:
                await cancelled.wait()
                writer.write(_frame(3, "cancelled", {"reason": "client"}))
            else:
                await asyncio.sleep(float(metadata.get("fake_delay_ms", 0)) / 1000)
                usage = {"input_tokens": 2, "output_tokens": 2}
                writer.write(_frame(3, "text", {"text": " two"}) + _frame(4, "usage", usage) + _frame(5, "done", {}))
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        finally:
            del self._cancels[stream_id]


async def _bare(args: argparse.Namespace) -> None:
    server = await asyncio.start_server(_BareServer().serve, args.host, args.port, backlog=2048)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sse_hold")
    parser.add_argument("role", choices=["client", "bare"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=128, help="streams opening at once (not yet mid-flight)")
    parser.add_argument("--cancel-connections", type=int, default=16, help="keep-alive connections for the cancels")
    parser.add_argument("--model", default="fake/echo")
    parser.add_argument("--timeout-s", type=float, default=300.0, help="the whole run's deadline")
    parser.add_argument("--end-within-s", type=float, default=60.0, help="after the cancels, each stream's deadline")
    args = parser.parse_args(argv)
    raise_nofile_limit()
    try:
        import uvloop

        run: Callable[[Any], Any] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is optional on some platforms
        run = asyncio.run
    run(_client(args) if args.role == "client" else _bare(args))


if __name__ == "__main__":
    main()
