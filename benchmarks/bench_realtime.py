"""Benchmark: realtime voice relayed through Switchyard vs. a client talking to the same fake vendor directly.

One run starts the vendor emulator (``python -m tests.emulator --default-scenario echo``, its own process: its OpenAI
Realtime session answers every appended audio chunk at once with one audio delta of the same length) and a real
``switchyard serve`` whose ``openai`` provider points at it, then measures on the same machine:

- added latency per relayed audio frame: one 20 ms frame (24 kHz pcm16) at a time, the time until its echo is back.
  Baseline: a WebSocket client speaking the vendor's protocol to the emulator directly (JSON ``input_audio_buffer.
  append`` with base64 audio out, ``response.output_audio.delta`` back). Through Switchyard: ``WS /api/v1/ws/
  realtime?model=openai/gpt-realtime`` with binary frames both ways (the route, the service's bounded queues, the
  OpenAI adapter on the SDK's realtime connection). p50 and p95; target ≤ 1 ms added at p50.
- concurrent sessions per worker held without loss: sessions at once through the one server process, each streaming
  audio in real time (a 100 ms frame every 100 ms) for a few seconds; a level is held when every session gets every
  byte back, in order, with no error, and the frames' median round trip stays under one frame (100 ms: the relay
  keeps up; the p95 is reported, but on shared cores it is other processes' noise as much as ours). The levels rise
  until one is not held. Baseline: the same levels straight to the emulator (whose Python WebSocket server, on the
  same cores, is the first limit).

The load generator shares the cores with both servers (and the emulator answers every frame in Python), so absolute
numbers are pessimistic; the difference and the ratio are the point.
"""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from benchmarks.harness import Result
from tests.support.app import mint
from tests.support.live_audio import tone_pcm
from tests.support.server import free_port, running_server

SUITE = "realtime"
ROOT = Path(__file__).resolve().parents[1]
RATE = 24_000
LATENCY_FRAME_MS = 20
LOAD_FRAME_MS = 100
MODEL = "openai/gpt-realtime"
VENDOR_MODEL = "gpt-realtime"


def _frame(ms: int) -> bytes:
    return tone_pcm(ms / 1000, rate=RATE)


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def _emulator() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator", "--port", str(port), "--default-scenario", "echo"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the vendor emulator did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- the two clients: the vendor's protocol straight to the emulator, Switchyard's ---------------------------------


class _Direct:
    """A client of the vendor's Realtime protocol, straight to the emulator."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, emulator: str) -> _Direct:
        url = emulator.replace("http://", "ws://") + f"/v1/realtime?model={VENDOR_MODEL}"
        ws = await connect(url, additional_headers={"Authorization": "Bearer sk-bench"}, max_size=None)
        assert json.loads(await ws.recv())["type"] == "session.created"
        update = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
        await ws.send(json.dumps({"type": "session.update", "session": update}))
        assert json.loads(await ws.recv())["type"] == "session.updated"
        return cls(ws)

    async def send(self, pcm: bytes) -> None:
        await self.ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}))

    async def receive(self) -> bytes:
        while True:
            event = json.loads(await self.ws.recv())
            if event["type"] == "response.output_audio.delta":
                return base64.b64decode(event["delta"])
            if event["type"] == "error":
                raise RuntimeError(f"the emulator refused: {event}")

    async def close(self) -> None:
        await self.ws.close()


class _Relayed:
    """A client of Switchyard's ``WS /api/v1/ws/realtime``."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, base_url: str, subject: str) -> _Relayed:
        url = base_url.replace("http://", "ws://") + f"/api/v1/ws/realtime?model={MODEL}"
        ws = await connect(url, additional_headers={"Authorization": f"Bearer {mint(subject)}"}, max_size=None)
        session = {"turn_detection": "none", "input_transcription": False, "input_audio": {"sample_rate": RATE}}
        await ws.send(json.dumps({"type": "session.update", "session": session}))
        first = await ws.recv()
        if isinstance(first, bytes) or json.loads(first)["type"] != "session.created":
            raise RuntimeError(f"the session did not open: {first!r}")
        return cls(ws)

    async def send(self, pcm: bytes) -> None:
        await self.ws.send(pcm)

    async def receive(self) -> bytes:
        while True:
            message = await self.ws.recv()
            if isinstance(message, bytes):
                return message
            if json.loads(message)["type"] in ("error", "cancelled", "done"):
                raise RuntimeError(f"the session ended: {message}")

    async def close(self) -> None:
        await self.ws.send(json.dumps({"type": "session.end"}))
        await self.ws.close()


Client = _Direct | _Relayed


async def _echoed(client: Client, size: int) -> None:
    """Wait until ``size`` bytes of echo came back (a frame may come back in more than one piece)."""
    got = 0
    while got < size:
        got += len(await client.receive())


# --- latency --------------------------------------------------------------------------------------------------------


async def _round_trips(client: Client, frames: int) -> list[float]:
    """Milliseconds from sending each frame to having its echo back, one frame in flight."""
    pcm = _frame(LATENCY_FRAME_MS)
    for _ in range(20):  # warm-up
        await client.send(pcm)
        await _echoed(client, len(pcm))
    times: list[float] = []
    for _ in range(frames):
        started = time.perf_counter()
        await client.send(pcm)
        await _echoed(client, len(pcm))
        times.append((time.perf_counter() - started) * 1000)
    await client.close()
    return times


# --- concurrent sessions --------------------------------------------------------------------------------------------


async def _session_held(client: Client, seconds: float) -> tuple[bool, list[float]]:
    """Stream ``seconds`` of audio in real time; held when every byte came back, in order. Round trips in ms."""
    pcm = _frame(LOAD_FRAME_MS)
    frames = round(seconds * 1000 / LOAD_FRAME_MS)
    sent_at: list[float] = []
    times: list[float] = []

    async def read() -> bytes:
        received = bytearray()
        while len(received) < frames * len(pcm):
            received += await client.receive()
            while len(times) < len(sent_at) and len(received) >= (len(times) + 1) * len(pcm):
                times.append((time.perf_counter() - sent_at[len(times)]) * 1000)
        return bytes(received)

    reader = asyncio.create_task(read())
    start = time.perf_counter()
    for index in range(frames):
        await asyncio.sleep(max(0.0, start + index * LOAD_FRAME_MS / 1000 - time.perf_counter()))
        sent_at.append(time.perf_counter())
        await client.send(pcm)
    try:
        received = await asyncio.wait_for(reader, seconds + 10)
    finally:
        await client.close()
    return received == pcm * frames, times


Opener = Callable[[int], Awaitable[Client]]


async def _level(open_client: Opener, sessions: int, seconds: float) -> tuple[bool, float, float]:
    """Whether ``sessions`` at once were all held, and the p50 and p95 frame round trips (ms) across them. Every
    session is open before any streams, so the burst of openings does not count as the relay's latency."""
    opened = await asyncio.gather(*(open_client(i) for i in range(sessions)), return_exceptions=True)
    clients = [client for client in opened if not isinstance(client, BaseException)]

    async def one(client: Client) -> tuple[bool, list[float]]:
        try:
            return await _session_held(client, seconds)
        except Exception:  # noqa: BLE001 - a broken session is the level's loss
            return False, []

    outcomes = await asyncio.gather(*(one(client) for client in clients))
    times = [t for _, session_times in outcomes for t in session_times]
    p50, p95 = (_p(times, 0.5), _p(times, 0.95)) if times else (float("inf"), float("inf"))
    held = len(clients) == sessions and all(ok for ok, _ in outcomes)
    return held and p50 < LOAD_FRAME_MS, p50, p95


async def _capacity(open_client: Opener, levels: tuple[int, ...], seconds: float) -> tuple[int, str, str]:
    """The most sessions held at once (of ``levels``, rising), their round trips, and the level that failed."""
    held, at_held, note = 0, "", ""
    for sessions in levels:
        ok, p50, p95 = await _level(open_client, sessions, seconds)
        if not ok:
            note = f"{sessions} not held (p50 {p50:.0f} ms, p95 {p95:.0f} ms)"
            break
        held, at_held = sessions, f"p50 {p50:.0f} ms, p95 {p95:.0f} ms"
    return held, at_held, note


def run(quick: bool = False) -> list[Result]:
    frames, seconds = (100, 2.0) if quick else (500, 5.0)
    levels = (5, 10, 20, 40) if quick else (5, 10, 15, 20, 30, 40, 50, 60, 80, 100, 120, 160, 200)
    with tempfile.TemporaryDirectory() as tmp, _emulator() as emulator:
        direct = asyncio.run(_direct_round_trips(emulator, frames))
        direct_capacity = asyncio.run(_capacity(lambda _index: _Direct.open(emulator), levels, seconds))
        env = {
            "SWITCHYARD_PROVIDERS_OPENAI_API_KEY": "sk-bench",
            "SWITCHYARD_PROVIDERS_OPENAI_BASE_URL": f"{emulator}/v1",
            "SWITCHYARD_LOGGING_LEVEL": "WARNING",
        }
        with running_server(Path(tmp), env) as server:
            relayed = asyncio.run(_relayed_round_trips(server.base_url, frames))
            capacity = asyncio.run(
                _capacity(lambda index: _Relayed.open(server.base_url, f"bench{index}"), levels, seconds)
            )
    figures: dict[str, Any] = {
        "direct_p50": statistics.median(direct),
        "direct_p95": _p(direct, 0.95),
        "relayed_p50": statistics.median(relayed),
        "relayed_p95": _p(relayed, 0.95),
        "direct_sessions": direct_capacity,
        "relayed_sessions": capacity,
    }
    print(json.dumps(figures, indent=2))
    base = "direct to the emulator"
    note = f"{frames} frames of {LATENCY_FRAME_MS} ms, one in flight"
    added = figures["relayed_p50"] - figures["direct_p50"]
    held, at_held, stopped = capacity
    load = f"real-time {LOAD_FRAME_MS} ms frames for {seconds:g} s each; {at_held or 'none held'}"
    return [
        Result(
            SUITE,
            "frame round trip p50 via Switchyard",
            figures["relayed_p50"],
            "ms",
            figures["direct_p50"],
            base,
            note,
        ),
        Result(
            SUITE,
            "frame round trip p95 via Switchyard",
            figures["relayed_p95"],
            "ms",
            figures["direct_p95"],
            base,
            note,
        ),
        Result(SUITE, "added latency per relayed frame (p50)", added, "ms", note="target ≤ 1 ms"),
        Result(
            SUITE,
            "concurrent sessions per worker held without loss",
            float(held),
            "sessions",
            baseline=float(direct_capacity[0]),
            baseline_name="the emulator alone, direct",
            note=load + (f"; {stopped}" if stopped else ""),
        ),
    ]


async def _direct_round_trips(emulator: str, frames: int) -> list[float]:
    return await _round_trips(await _Direct.open(emulator), frames)


async def _relayed_round_trips(base_url: str, frames: int) -> list[float]:
    return await _round_trips(await _Relayed.open(base_url, "bench"), frames)
