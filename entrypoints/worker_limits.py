"""Entrypoint check: ``switchyard serve --workers N`` (N > 1) with limits configured needs Redis.

Without ``redis.url`` the quota counters are the in-process store (``adapters/memory/quotas.py``), one per worker: N
workers would each let a customer through up to its limit, N times the limit in all, and a budget would be spent N
times over. An operator who configured a limit expects it to hold, so this refuses to start rather than serve with
limits that silently do not. Limits are configured when a ``quotas.*`` default is set, or when the database holds a
per-customer override or an API key with limits of its own (read once, before the workers start; an unreadable
database is left to the start-up that follows, which reports it). One worker, or Redis, lifts the refusal.
"""

from __future__ import annotations

import inspect
from typing import Any

from domain.errors import ConfigurationError, ServiceError
from domain.quotas import Limits
from settings import Settings

__all__ = ["refuse_per_worker_limits"]


def _defaults(settings: Settings) -> Limits:
    quotas = settings.quotas
    return Limits(
        quotas.requests_per_minute,
        quotas.tokens_per_minute,
        quotas.concurrent_streams,
        quotas.daily_budget_usd,
        quotas.monthly_budget_usd,
    )


async def _stored_limits(container: Any) -> str | None:
    """What in the database configures a limit (an override, a key with limits), or ``None``."""
    try:
        await _ready(container.database_schema())  # the tables exist (migrated as a start would)
        overrides = await (await _ready(container.quota_overrides())).list()
        if overrides:
            return f"a per-customer override (customer {sorted(overrides)[0]!r})"
        for key in await (await _ready(container.api_key_store())).list():
            if key.limits.any and not key.revoked:
                return f"API key {key.id} with limits of its own"
    except ServiceError:
        return None
    return None


async def _ready(provided: Any) -> Any:
    """A provider's value (providers that depend on an async resource hand back an awaitable)."""
    return await provided if inspect.isawaitable(provided) else provided


async def refuse_per_worker_limits(settings: Settings, container: Any) -> int:
    """``ConfigurationError`` naming ``redis.url`` when several workers would each count limits on their own; else
    0 (the return value lets the CLI run it as a use of the container)."""
    if settings.http.workers <= 1 or settings.redis.url is not None:
        return 0
    if _defaults(settings).any:
        what: str | None = "a quotas.* default"
    else:
        what = await _stored_limits(container)
    if what is None:
        return 0
    raise ConfigurationError(
        "SWITCHYARD_REDIS_URL",
        f"{settings.http.workers} workers with limits configured ({what}) need Redis: without it each worker counts "
        "limits and budgets on its own, so they would allow up to workers x the limit; set redis.url, or serve with "
        "one worker",
    )
