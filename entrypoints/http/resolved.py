"""HTTP boundary: the singletons every request injects, built once when the app starts and then handed over as they are.

dependency_injector puts a provider in async mode when one of its dependencies is async (the usage ledger's database,
the API-key store behind the token verifier): from then on each call returns a new Future, and ``@inject`` on an
``async def`` awaits every such argument through ``asyncio.gather``, a Task per argument per request (~40 µs each, and
a turn of the event loop). A singleton that exists needs none of that: ``settle`` builds the named ones after the
container's resources have started and switches them to sync mode, so a call returns the instance itself;
``unsettle`` switches them back when the app stops (a container may be started again). An overridden provider (tests)
is left alone, and a sync-mode provider that is ever given something awaitable still gets it awaited by ``@inject``.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Final

from dependency_injector import providers
from dependency_injector.containers import Container

__all__ = ["HOT_SINGLETONS", "settle", "unsettle"]

HOT_SINGLETONS: Final = ("token_verifier", "chat_service")
"""Injected on every authenticated request (the auth hook) and every chat request (native and front doors)."""


async def settle(container: Container, names: Sequence[str] = HOT_SINGLETONS) -> list[providers.Provider[object]]:
    """Build each named async-mode singleton now and switch it to sync mode; the providers it switched."""
    settled: list[providers.Provider[object]] = []
    for name in names:
        provider = getattr(container, name, None)
        if not isinstance(provider, providers.BaseSingleton) or provider.overridden:
            continue
        instance = provider()  # the first call decides the mode: async when a dependency is
        if not inspect.isawaitable(instance):
            continue
        await instance
        provider.disable_async_mode()
        settled.append(provider)
    return settled


def unsettle(settled: Sequence[providers.Provider[object]]) -> None:
    """Put the providers ``settle`` switched back into async mode."""
    for provider in settled:
        provider.enable_async_mode()
