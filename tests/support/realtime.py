"""Test helper: a ``RealtimeService`` over a real runner and registry with fakes for the vendor, the ledger and the
metrics, and a driver that reads a run's updates while a test plays the client's side."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from domain.catalog import ModelSpec
from domain.realtime import RealtimeConfig
from domain.types import CustomerId
from ports.providers import VendorProviders
from ports.realtime import REALTIME_PORT, RealtimeProvider
from services.attempts import AttemptRunner, Caller, RetryPolicy
from services.quotas import MeteredLedger, QuotaGate
from services.realtime import TERMINAL_UPDATES, RealtimeRun, RealtimeService, RealtimeUpdate
from services.registry import ProviderRegistry
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.usage import InMemoryUsageLedger

__all__ = ["CALLER", "Driver", "RealtimeHarness", "realtime_spec", "terminal_of"]

CALLER = Caller(CustomerId("alice"), "req-realtime")


def realtime_spec(model_id: str = "voice", provider: str = "alpha", **kwargs: Any) -> ModelSpec:
    """A realtime model priced per minute of audio (both ways) and per token."""
    kwargs.setdefault("audio_price_per_minute", 0.06)
    kwargs.setdefault("input_price_per_mtok", 10.0)
    kwargs.setdefault("output_price_per_mtok", 20.0)
    return ModelSpec(id=model_id, provider=provider, capabilities=frozenset({"realtime"}), **kwargs)


class RealtimeHarness:
    """The service under test; ``vendors`` maps a provider name to its realtime provider (``None``: the vendor has
    no realtime API). ``sleep`` is the runner's wait before a retry (none by default)."""

    def __init__(
        self,
        catalog: list[ModelSpec],
        vendors: Mapping[str, RealtimeProvider | None],
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        **service: Any,
    ) -> None:
        registered = {
            name: VendorProviders(name, {} if provider is None else {REALTIME_PORT: provider})
            for name, provider in vendors.items()
        }
        self.usage = InMemoryUsageLedger()
        self.metrics = RecordingMetrics()
        gate = service.get("quotas")
        ledger = MeteredLedger(self.usage, gate) if isinstance(gate, QuotaGate) else self.usage

        async def no_sleep(_seconds: float) -> None:
            return None

        policy = policy or RetryPolicy(max_retries=2, base_delay_s=0.0, idle_timeout_s=5.0)
        registry = ProviderRegistry(catalog, registered)
        runner = AttemptRunner(registry, ledger, self.metrics, policy, sleep=sleep or no_sleep)
        self.service = RealtimeService(runner, self.metrics, **service)

    async def start(self, model: str = "alpha/voice", **config: Any) -> RealtimeRun:
        return await self.service.start(model, RealtimeConfig(**config), CALLER)


class Driver:
    """Reads a run's updates in a task (as the socket's deliverer does) while the test plays the client."""

    def __init__(self, run: RealtimeRun) -> None:
        self.run = run
        self.updates: list[RealtimeUpdate] = []
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for update in self.run.updates():
            self.updates.append(update)
            self._changed.set()

    async def wait_for(self, kind: type[Any] | tuple[type[Any], ...], count: int = 1, timeout: float = 10.0) -> None:
        """Until ``count`` updates of ``kind`` arrived (or the run ended)."""
        async with asyncio.timeout(timeout):
            while sum(isinstance(u, kind) for u in self.updates) < count and not self.task.done():
                self._changed.clear()
                await self._changed.wait()

    async def finish(self, timeout: float = 10.0) -> RealtimeUpdate:
        """The run's one terminal update, once it ended."""
        await asyncio.wait_for(asyncio.shield(self.task), timeout)
        return terminal_of(self.updates)


def terminal_of(updates: list[RealtimeUpdate]) -> RealtimeUpdate:
    """The one terminal update, which is the last one."""
    terminals = [u for u in updates if isinstance(u, TERMINAL_UPDATES)]
    assert len(terminals) == 1, updates
    assert updates[-1] is terminals[0]
    return terminals[0]
