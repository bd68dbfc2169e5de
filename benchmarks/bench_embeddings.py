"""Benchmark: embeddings through Switchyard vs. the official SDK straight to the same fake upstream (the emulator).

One run starts the vendor emulator and a real ``switchyard serve`` whose OpenAI provider points at it, then sends
the same N requests (4 texts each, 1536-dimension vectors) at fixed concurrency both ways: ``AsyncOpenAI``
``embeddings.create`` to the emulator (the SDK's default base64 transfer, decoded by the SDK), and ``POST
/api/v1/embeddings`` (the OpenAI adapter behind it, JSON floats to the client). Reported: requests/s and median
latency, each beside the direct figure measured in the same run, so the ratio is the point.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
from pathlib import Path

import httpx
from openai import AsyncOpenAI

from benchmarks.bench_chat import _emulator, _load
from benchmarks.harness import Result
from tests.support.app import mint
from tests.support.server import running_server

SUITE = "embeddings"
MODEL = "text-embedding-3-small"  # the emulator answers unknown names with its default scenario: 1536-d vectors
TEXTS = ["the lighthouse at dawn", "a ship in the fog", "gulls over the harbour", "waves on the breakwater"]


async def _direct(emulator: str, total: int, concurrency: int) -> dict[str, float]:
    client = AsyncOpenAI(api_key="sk-bench", base_url=f"{emulator}/v1", max_retries=0)

    async def one() -> None:
        reply = await client.embeddings.create(model=MODEL, input=TEXTS)
        assert len(reply.data) == len(TEXTS)
        assert len(reply.data[0].embedding) == 1536

    await _load(one, min(20, total), concurrency)  # warm-up
    rate, latencies = await _load(one, total, concurrency)
    await client.close()
    return {"rps": rate, "p50": statistics.median(latencies)}


async def _switchyard(base_url: str, total: int, concurrency: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {mint('bench')}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    body = {"model": f"openai/{MODEL}", "input": TEXTS}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30.0, limits=limits) as client:

        async def one() -> None:
            reply = await client.post("/api/v1/embeddings", json=body)
            assert reply.status_code == 200, reply.text
            assert len(reply.json()["data"]["embeddings"]) == len(TEXTS)

        await _load(one, min(20, total), concurrency)
        rate, latencies = await _load(one, total, concurrency)
    return {"rps": rate, "p50": statistics.median(latencies)}


def run(quick: bool = False) -> list[Result]:
    total, concurrency = (100, 10) if quick else (600, 16)
    with tempfile.TemporaryDirectory() as tmp, _emulator() as emulator:
        direct = asyncio.run(_direct(emulator, total, concurrency))
        env = {
            "SWITCHYARD_PROVIDERS_OPENAI_API_KEY": "sk-bench",
            "SWITCHYARD_PROVIDERS_OPENAI_BASE_URL": f"{emulator}/v1",
            "SWITCHYARD_LOGGING_LEVEL": "WARNING",
        }
        with running_server(Path(tmp), env) as server:
            through = asyncio.run(_switchyard(server.base_url, total, concurrency))
    base = "direct AsyncOpenAI -> emulator"
    note = f"{total} requests of {len(TEXTS)} texts (1536-d), concurrency {concurrency}"
    print(json.dumps({"direct": direct, "switchyard": through}, indent=2))
    return [
        Result(SUITE, "requests/s via Switchyard", through["rps"], "req/s", direct["rps"], base, note),
        Result(SUITE, "p50 latency via Switchyard", through["p50"], "ms", direct["p50"], base, note),
    ]
