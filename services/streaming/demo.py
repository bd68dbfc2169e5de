"""Use case (test-only): a scripted producer that drives real streams before a real provider does.

Exposed over HTTP only when ``streaming.test_producer_enabled`` is set (end-to-end tests, demos).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Literal

from attrs import frozen

from domain.errors import ProviderError
from domain.types import JsonValue
from services.streaming.manager import Producer, StreamPublisher

__all__ = ["DemoScript", "demo_producer"]


@frozen
class DemoScript:
    """``events`` text events ``interval_ms`` apart, then return, raise (``fail``) or go silent (``hang``)."""

    events: int = 5
    interval_ms: float = 0.0
    text: str = "tok"
    fail: Literal["provider", "crash"] | None = None
    hang: bool = False


def demo_producer(script: DemoScript) -> Producer:
    """A producer following ``script``: ``start``, the text events, ``usage``, then the scripted end."""

    async def produce(publisher: StreamPublisher) -> Mapping[str, JsonValue] | None:
        await publisher.publish("start", {"model": "demo/scripted", "provider": "demo"})
        for index in range(script.events):
            if script.interval_ms > 0:
                await asyncio.sleep(script.interval_ms / 1000)
            await publisher.publish("text", {"text": f"{script.text}{index} ", "index": index})
        await publisher.publish("usage", {"input_tokens": 1, "output_tokens": script.events})
        if script.fail == "provider":
            raise ProviderError("demo", "scripted provider failure", retryable=True)
        if script.fail == "crash":
            raise RuntimeError("scripted crash")
        if script.hang:
            await asyncio.Event().wait()
        return {"finish_reason": "stop", "events": script.events}

    return produce
