"""Benchmark: the OpenAI front door. The same ``AsyncOpenAI`` client code, pointed at Switchyard's ``/v1`` (which
serves the model through its OpenAI adapter from the vendor emulator) and straight at the emulator.

One run starts the emulator and a real ``switchyard serve`` whose OpenAI provider points at it, then measures both
legs with the SDK as the only client: non-streaming requests/s and median latency (N requests at fixed
concurrency), and for a paced 40-token stream (5 ms apart) the time to first token and mean inter-token gap. The
door adds a translation on each side of ``ChatService`` and the stream's trip through the StreamingManager; the
ratios say what that costs. A third leg, plain httpx to the native ``POST /api/v1/chat`` of the same server, sets
the door beside the native route (its client is lighter than the SDK, and legs run one after another, so on a busy
machine this pair is noisy); the steady measure of the translation itself is in-process: the Quart test client
against both routes on the fake vendor, best of five interleaved rounds.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI
from quart.typing import TestClientProtocol

from benchmarks.bench_chat import CATALOG, MESSAGES, _emulator, _gaps, _load, _switchyard
from benchmarks.harness import Result
from entrypoints.http.app import create_app
from tests.support.app import auth_headers, make_container, make_settings, mint
from tests.support.server import running_server

SUITE = "openai_door"
_FAKE_CHAT = {"model": "fake/echo", "messages": [{"role": "user", "content": "Say hello to the door."}]}


async def _sdk_leg(
    base_url: str, api_key: str, models: tuple[str, str], total: int, concurrency: int, streams: int
) -> dict[str, float]:
    """requests/s, p50, TTFT and inter-token gap of the SDK at ``base_url`` (``models``: whole, streamed)."""
    text_model, stream_model = models
    client = AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=30.0)
    messages: Any = MESSAGES

    async def one() -> None:
        reply = await client.chat.completions.create(model=text_model, messages=messages)
        assert reply.choices[0].message.content

    await _load(one, min(20, total), concurrency)  # warm-up
    rate, latencies = await _load(one, total, concurrency)
    ttfts, gaps = [], []
    for _ in range(streams):
        started = time.perf_counter()
        arrivals: list[float] = []
        stream = await client.chat.completions.create(model=stream_model, messages=messages, stream=True)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.perf_counter())
        ttfts.append((arrivals[0] - started) * 1000)
        gaps.append(_gaps(arrivals) * 1000)
    await client.close()
    return {
        "rps": rate,
        "p50": statistics.median(latencies),
        "ttft": statistics.median(ttfts),
        "itl": statistics.fmean(gaps),
    }


async def _in_process(rounds: int, per_round: int) -> dict[str, float]:
    """Best requests/s of the native route and the door (non-streaming, fake vendor), rounds interleaved."""
    with tempfile.TemporaryDirectory() as tmp:
        container = make_container(make_settings(Path(tmp), logging={"level": "WARNING"}))
        app = create_app(container)
        best = {"native": 0.0, "door": 0.0}
        async with app.test_app():
            client: TestClientProtocol = app.test_client()
            headers = auth_headers("bench")
            for _ in range(rounds):
                for name, path in (("native", "/api/v1/chat"), ("door", "/v1/chat/completions")):
                    started = time.perf_counter()
                    for _ in range(per_round):
                        reply = await client.post(path, json=_FAKE_CHAT, headers=headers)
                        assert reply.status_code == 200, await reply.get_data(as_text=True)
                    best[name] = max(best[name], per_round / (time.perf_counter() - started))
        container.unwire()
    return best


def run(quick: bool = False) -> list[Result]:
    total, concurrency, streams = (100, 10, 5) if quick else (1000, 20, 30)
    with tempfile.TemporaryDirectory() as tmp, _emulator() as emulator:
        catalog = Path(tmp) / "catalog.toml"
        catalog.write_text(CATALOG)
        direct = asyncio.run(
            _sdk_leg(f"{emulator}/v1", "sk-bench", ("text", "bench-stream"), total, concurrency, streams)
        )
        env = {
            "SWITCHYARD_PROVIDERS_OPENAI_API_KEY": "sk-bench",
            "SWITCHYARD_PROVIDERS_OPENAI_BASE_URL": f"{emulator}/v1",
            "SWITCHYARD_PROVIDERS_CATALOG_PATH": str(catalog),
            "SWITCHYARD_LOGGING_LEVEL": "WARNING",
        }
        with running_server(Path(tmp), env) as server:
            models = ("openai/bench-text", "openai/bench-stream")
            door = asyncio.run(_sdk_leg(f"{server.base_url}/v1", mint("bench"), models, total, concurrency, streams))
            native = asyncio.run(_switchyard(server.base_url, total, concurrency, streams))
    rounds = asyncio.run(_in_process(3 if quick else 5, 100 if quick else 300))
    print(json.dumps({"direct": direct, "openai_door": door, "native": native, "in_process": rounds}, indent=2))
    direct_base, native_base = "AsyncOpenAI -> emulator directly", "httpx -> native POST /api/v1/chat, same server"
    note = f"{total} requests, concurrency {concurrency}"
    stream_note = f"{streams} streams of 40 tokens paced 5 ms"
    measured = [
        ("non-stream requests/s", "rps", "req/s", note),
        ("non-stream p50 latency", "p50", "ms", note),
        ("stream time to first token", "ttft", "ms", stream_note),
        ("stream mean inter-token gap", "itl", "ms", stream_note),
    ]
    results = [
        Result(SUITE, f"{what} via the OpenAI door", door[key], unit, direct[key], direct_base, how)
        for what, key, unit, how in measured
    ]
    # The door against the native route of the same server: what the translation itself costs.
    results += [
        Result(SUITE, f"{what}, OpenAI door vs native", door[key], unit, native[key], native_base, how)
        for what, key, unit, how in measured
        if key in native
    ]
    results.append(
        Result(
            SUITE,
            "non-stream requests/s in-process, OpenAI door vs native (fake vendor)",
            rounds["door"],
            "req/s",
            rounds["native"],
            "native POST /api/v1/chat, same app",
            "Quart test client, best of interleaved rounds",
        )
    )
    return results
