"""Test helper: a burst of calls through a quota gate on a shared Redis, run as its own process
(``python -m tests.support.quota_burst URL PREFIX CUSTOMER BUDGET CALLS [key]``) so two processes can race.
With ``key`` the budget is an API key's own (the calls are made with that key, under a customer budget of 1000x), so
the key's counters are the ones raced.

The process prints ``ready`` once connected and starts when a line arrives on its stdin (so two processes start
together whatever their start-up took). Each call reserves $1, records $1 of usage and settles; the process then
prints how many calls were admitted.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime

from redis.asyncio import Redis

from adapters.redis.quotas import RedisQuotaStore
from domain.auth import AuthContext
from domain.catalog import ModelSpec
from domain.errors import RateLimitError
from domain.metering import Units
from domain.quotas import Limits
from domain.types import CustomerId
from domain.usage import UsageRecord
from services.attempts import Caller, Candidates
from services.principal import bind_principal
from services.quotas import QuotaGate, QuotaPolicy

__all__ = ["DOLLAR_MODEL", "KEY_ID", "burst"]

KEY_ID = "key_burst"

DOLLAR_MODEL = ModelSpec(id="dollar", provider="fake", capabilities=frozenset({"text"}), output_price_per_mtok=1e6)
"""$1 per output token: a call estimated (and spending) one output token costs $1."""


async def burst(gate: QuotaGate, customer: str, calls: int, tag: str, spread_s: float = 0.005) -> int:
    """Run ``calls`` concurrent $1 calls through ``gate``; how many were admitted."""
    admitted = 0

    async def call(index: int) -> None:
        nonlocal admitted
        caller = Caller(CustomerId(customer), f"{tag}-{index}")
        await asyncio.sleep(index * spread_s)  # spread over a while, so two processes' calls interleave
        try:
            admission = await gate.admit(caller, Candidates("text", (DOLLAR_MODEL,)), lambda _: Units(output_tokens=1))
        except RateLimitError:
            return
        admitted += 1
        await asyncio.sleep(0.02)
        record = UsageRecord(
            request_id=caller.request_id, customer_id=customer, capability="text", provider="fake",
            model="fake/dollar", outcome="done", created_at=datetime.now(UTC), output_tokens=1, cost_usd=1.0,
        )  # fmt: skip
        await gate.count(record)
        await admission.release()

    await asyncio.gather(*(call(i) for i in range(calls)))
    return admitted


async def _main(url: str, prefix: str, customer: str, budget: float, calls: int, key: bool) -> None:
    client = Redis.from_url(url)
    await client.ping()
    limits = Limits(daily_budget_usd=budget * 1000 if key else budget)
    gate = QuotaGate(RedisQuotaStore(client, prefix=prefix), None, QuotaPolicy(limits))
    if key:  # every call of this process is the key's (tasks started from here inherit the caller)
        bind_principal(AuthContext(CustomerId(customer), key_id=KEY_ID, key_limits=Limits(daily_budget_usd=budget)))
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    print(await burst(gate, customer, calls, f"p{os.getpid()}"), flush=True)
    await gate.aclose()
    await client.aclose()


if __name__ == "__main__":
    url, prefix, customer, budget, calls = sys.argv[1:6]
    asyncio.run(_main(url, prefix, customer, float(budget), int(calls), sys.argv[6:7] == ["key"]))
