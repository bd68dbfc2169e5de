"""Peer benchmark: the fake OpenAI upstream every leg calls, fast enough to stay out of the measurement.

The vendor emulator (``tests/emulator``) is a Quart app: strict, but a few hundred requests/s on this machine kind,
which would make it the bottleneck of a throughput benchmark and take CPU from the servers it measures. This is a
bare HTTP/1.1 keep-alive server on an ``asyncio.Protocol`` (uvloop where installed) that answers
``POST /v1/chat/completions`` with the emulator's own renderings (``tests/emulator/render_openai.py``), so the bodies
are the ones the contract suites prove the adapters against:

- model ``bench-stream``: the emulator's paced scenario (40 tokens, 5 ms apart) for time to first token and
  inter-token gaps; any other model: the ``text`` scenario (``Hello, world!`` with usage), unpaced;
- ``stream: true``: SSE with chunked transfer encoding, the usage chunk when ``stream_options.include_usage`` asks;
  otherwise the whole ``chat.completion`` JSON.

Requests without ``Authorization: Bearer ...`` get OpenAI's 401 body. ``GET /health`` answers 200. Run it alone with
``python -m benchmarks.peers.upstream --port 8900``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from functools import cache
from typing import Any, cast

from tests.emulator.render_openai import chat_completion, chat_stream, openai_error
from tests.emulator.scenario import SCENARIOS, Fault

__all__ = ["STREAM_MODEL", "serve"]

STREAM_MODEL = "bench-stream"
_MAX_HEAD = 64 * 1024
_MAX_BODY = 1024 * 1024


def _response(status: int, reason: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
        "connection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


_HEALTH = _response(200, "OK", "application/json", b'{"status":"ok"}')
_NOT_FOUND = _response(
    404, "Not Found", "application/json", b'{"error":{"message":"not found","type":"invalid_request_error"}}'
)
_BAD = _response(
    400, "Bad Request", "application/json", b'{"error":{"message":"bad request","type":"invalid_request_error"}}'
)
_UNAUTHORIZED = _response(
    401, "Unauthorized", "application/json", json.dumps(openai_error(Fault("unauthorized")).body).encode()
)
_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n"
)


@cache
def _whole(model: str) -> bytes:
    scenario = SCENARIOS[STREAM_MODEL if model == STREAM_MODEL else "text"]
    body = json.dumps(chat_completion(scenario, model), separators=(",", ":")).encode()
    return _response(200, "OK", "application/json", body)


@cache
def _frames(model: str, include_usage: bool) -> tuple[tuple[bytes, ...], float]:
    """The stream as HTTP chunks, and the pause before each one after the first."""
    scenario = SCENARIOS[STREAM_MODEL if model == STREAM_MODEL else "text"]
    frames = chat_stream(scenario, model, include_usage=include_usage).frames
    return tuple(f"{len(f):x}\r\n".encode() + f + b"\r\n" for f in frames), scenario.chunk_delay_s


class _Connection(asyncio.Protocol):
    """One keep-alive connection: parse request heads and Content-Length bodies, answer in order."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._streaming: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)  # uvloop's transports do not subclass asyncio's

    def connection_lost(self, exc: Exception | None) -> None:
        if self._streaming is not None:
            self._streaming.cancel()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._streaming is None:
            self._drain()

    def _drain(self) -> None:
        """Answer every complete request in the buffer (pipelining allowed); a stream holds the rest until done."""
        transport = self._transport
        assert transport is not None
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEAD:
                    transport.write(_BAD)
                    transport.close()
                return
            head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
            method, _, rest = head[0].partition(" ")
            path = rest.partition(" ")[0]
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", ""):  # clients send JSON with a length; keep it simple
                transport.write(_BAD)
                transport.close()
                return
            length = int(headers.get("content-length", "0") or "0")
            if length > _MAX_BODY:
                transport.write(_BAD)
                transport.close()
                return
            if len(self._buffer) < end + 4 + length:
                return
            body = bytes(self._buffer[end + 4 : end + 4 + length])
            del self._buffer[: end + 4 + length]
            if self._answer(method, path, headers, body):
                return  # a stream is being written; the rest of the buffer waits for it

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
        """Write the answer; True when a paced stream was started (the connection is busy until it ends)."""
        transport = self._transport
        assert transport is not None
        if method == "GET" and path == "/health":
            transport.write(_HEALTH)
            return False
        if method != "POST" or path.partition("?")[0] != "/v1/chat/completions":
            transport.write(_NOT_FOUND)
            return False
        if not headers.get("authorization", "").startswith("Bearer "):
            transport.write(_UNAUTHORIZED)
            return False
        try:
            request: Any = json.loads(body)
            model = str(request["model"])
        except (ValueError, KeyError, TypeError):
            transport.write(_BAD)
            return False
        if not request.get("stream"):
            transport.write(_whole(model))
            return False
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        frames, delay = _frames(model, include_usage)
        if not delay:
            transport.write(_STREAM_HEAD + b"".join(frames) + b"0\r\n\r\n")
            return False
        self._streaming = asyncio.get_running_loop().create_task(self._paced(frames, delay))
        return True

    async def _paced(self, frames: tuple[bytes, ...], delay: float) -> None:
        transport = self._transport
        assert transport is not None
        transport.write(_STREAM_HEAD + frames[0])
        for frame in frames[1:]:
            await asyncio.sleep(delay)
            if transport.is_closing():
                return
            transport.write(frame)
        transport.write(b"0\r\n\r\n")
        self._streaming = None
        self._drain()


async def serve(host: str, port: int) -> None:
    """Serve until cancelled."""
    server = await asyncio.get_running_loop().create_server(_Connection, host, port, backlog=2048)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """Serve in the foreground until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers.upstream", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    args = parser.parse_args(argv)
    try:
        import uvloop  # the fastest loop installed: the upstream should cost the machine as little as possible

        uvloop.run(serve(args.host, args.port))
    except ImportError:  # pragma: no cover - uvloop is a dependency on every platform but Windows
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
