"""Fakes: vendor bundles around test providers, and a chat service assembled the way the container does it."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TypeVar

from ports.metrics import Metrics
from ports.providers import PortKey, VendorProviders
from ports.text import TEXT_PORT, TextProvider
from ports.tokens import TokenCounter
from ports.usage import UsageLedger
from services.attempts import AttemptRunner, RetryPolicy
from services.chat import ChatService
from services.registry import ProviderRegistry
from services.streaming.manager import StreamingManager

__all__ = ["make_chat_service", "text_vendors", "vendors_with"]

P = TypeVar("P")


def text_vendors(providers: Mapping[str, TextProvider]) -> dict[str, VendorProviders]:
    """Vendor bundles serving only text, one per ``{vendor name: text provider}``."""
    return vendors_with(TEXT_PORT, providers)


def vendors_with(port: PortKey[P], providers: Mapping[str, P]) -> dict[str, VendorProviders]:
    """Vendor bundles serving ``port`` alone, one per ``{vendor name: provider}``."""
    return {name: VendorProviders(name, {port: provider}) for name, provider in providers.items()}


def make_chat_service(
    registry: ProviderRegistry,
    streams: StreamingManager | None,
    usage: UsageLedger,
    metrics: Metrics,
    policy: RetryPolicy | None = None,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    jitter: Callable[[], float] = random.random,
    tokens: TokenCounter | None = None,
) -> ChatService:
    """A chat service over its own attempt runner (what the container wires, with test clocks)."""
    runner = AttemptRunner(registry, usage, metrics, policy, sleep=sleep, clock=clock, now=now, jitter=jitter)
    return ChatService(runner, streams, tokens=tokens)
