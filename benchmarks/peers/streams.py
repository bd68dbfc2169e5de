"""Peer benchmark: streaming latency at concurrency 1, time to first token and the gap between tokens.

One small httpx client reads every leg's SSE the same way (line by line, one JSON decode per data line), so the
client's own cost is equal across legs and cancels in the ratios. The upstream paces 40 tokens 5 ms apart: the
inter-token gap ratio (gap through a gateway over the direct gap) shows whether a gateway delays or batches tokens.
Two wire formats: OpenAI chunks (``data: {...choices[0].delta.content}``, the upstream, LiteLLM and Switchyard's
``/v1`` door) and Switchyard's native events (``event: text``).
"""

from __future__ import annotations

import itertools
import json
import statistics
import time
from typing import Literal

import httpx
from attrs import frozen

from benchmarks.peers.load import Leg

__all__ = ["StreamTiming", "Wire", "time_streams"]

Wire = Literal["openai", "switchyard"]


@frozen
class StreamTiming:
    """Median time to first token and mean inter-token gap, in milliseconds, over ``streams`` streams."""

    streams: int
    ttft_ms: float
    gap_ms: float


def _arrivals(client: httpx.Client, leg: Leg, wire: Wire) -> tuple[float, list[float]]:
    """(start, the perf_counter of each text token) for one stream."""
    started = time.perf_counter()
    arrivals: list[float] = []
    event = ""
    with client.stream("POST", leg.url, json=dict(leg.body), headers=dict(leg.headers)) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{leg.name}: stream refused: {response.status_code} {response.read()[:500]!r}")
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif not line.startswith("data:"):
                continue
            elif wire == "switchyard":
                if event == "text":
                    json.loads(line[5:])
                    arrivals.append(time.perf_counter())
                elif event in ("done", "error"):
                    if event == "error":
                        raise RuntimeError(f"{leg.name}: stream error {line}")
                    break
            else:
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                choices = json.loads(data).get("choices") or [{}]
                if (choices[0].get("delta") or {}).get("content"):
                    arrivals.append(time.perf_counter())
    if not arrivals:
        raise RuntimeError(f"{leg.name}: the stream carried no text")
    return started, arrivals


def time_streams(leg: Leg, wire: Wire, streams: int, warmup: int = 3) -> StreamTiming:
    """Open ``streams`` streams one after another (after ``warmup`` unmeasured ones) on one keep-alive connection."""
    ttfts: list[float] = []
    gaps: list[float] = []
    with httpx.Client(timeout=30.0) as client:
        for index in range(warmup + streams):
            started, arrivals = _arrivals(client, leg, wire)
            if index < warmup:
                continue
            ttfts.append((arrivals[0] - started) * 1000)
            if len(arrivals) > 1:
                gaps.append(statistics.fmean(b - a for a, b in itertools.pairwise(arrivals)) * 1000)
    return StreamTiming(streams, statistics.median(ttfts), statistics.fmean(gaps) if gaps else float("nan"))
