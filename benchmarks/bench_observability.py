"""Benchmark: the cost of the usage ledger and Prometheus metrics on the request path.

Requests/s through the whole app (Quart test client, no network) with the SQLite usage ledger and PrometheusMetrics
on, against the same app with NullMetrics and a ledger that drops records, measured in the same run. Two routes:
``GET /health`` (metrics and request logging only) and a non-streaming ``POST /api/v1/chat`` on the fake vendor
(one usage record, provider and token metrics per request).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from adapters.jose.minter import JoseTokenMinter
from benchmarks.harness import Result
from container import build_container
from domain.usage import UsageRecord, UsageTotal
from entrypoints.http.app import create_app
from ports.metrics import NullMetrics
from ports.usage import GroupBy
from settings import Secret, Settings, load_settings

_SECRET = Secret("benchmark-secret-that-is-long-enough-for-hs256-0123456789")
_CHAT = {"model": "fake/echo", "messages": [{"role": "user", "content": "hello there"}]}


class _DroppingLedger:
    """A ledger that keeps nothing: the 'off' baseline."""

    async def record(self, record: UsageRecord) -> None:
        return None

    async def totals(
        self, customer_id: str, *, start: datetime | None, end: datetime | None, group_by: GroupBy
    ) -> list[UsageTotal]:
        return []


def _settings(folder: Path, *, metrics: bool) -> Settings:
    base = load_settings({"SWITCHYARD_ENV": "test"})
    return attrs.evolve(
        base,
        app=attrs.evolve(base.app, data_dir=folder),
        http=attrs.evolve(base.http, metrics_enabled=metrics),
        auth=attrs.evolve(base.auth, jwt_secret=_SECRET),
        database=attrs.evolve(base.database, url=Secret(f"sqlite+aiosqlite:///{folder / 'bench.db'}")),
    )


async def _rate(call: Callable[[], Awaitable[Any]], seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(20):
            await call()
        count += 20
    return count / elapsed


@contextlib.asynccontextmanager
async def _started(folder: Path, *, on: bool) -> AsyncIterator[tuple[Callable[[], Awaitable[None]], ...]]:
    """The app with ledger and metrics on (or off); yields a /health call and a chat call."""
    overrides: dict[str, Any] = {} if on else {"metrics": NullMetrics(), "usage_ledger": _DroppingLedger()}
    container = build_container(_settings(folder, metrics=on), **overrides)
    app = create_app(container)
    headers = {"Authorization": f"Bearer {JoseTokenMinter(_SECRET).mint('bench', ttl_s=3600)}"}
    try:
        async with app.test_app():
            client = app.test_client()

            async def health() -> None:
                response = await client.get("/health")
                assert response.status_code == 200

            async def chat() -> None:
                response = await client.post("/api/v1/chat", json=_CHAT, headers=headers)
                assert response.status_code == 200, await response.get_data(as_text=True)

            for _ in range(20):  # warm-up: routes, pools, code paths
                await health()
                await chat()
            yield health, chat
    finally:
        container.unwire()


async def _run(seconds: float, rounds: int) -> list[Result]:
    best: dict[tuple[str, bool], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            _started(Path(tmp) / "off", on=False) as off,
            _started(Path(tmp) / "on", on=True) as on,
        ):
            # Alternate short rounds and keep each side's best, so drift and neighbours' load hit both alike.
            for _ in range(rounds):
                for enabled, (health, chat) in ((False, off), (True, on)):
                    for name, call in (("health", health), ("chat", chat)):
                        rate = await _rate(call, seconds)
                        best[name, enabled] = max(best.get((name, enabled), 0.0), rate)
    note = f"best of {rounds} interleaved rounds; Quart test client, one process"
    return [
        Result(
            "observability",
            "GET /health, metrics on",
            best["health", True],
            "req/s",
            best["health", False],
            "metrics off",
            note,
        ),
        Result(
            "observability",
            "POST /api/v1/chat (fake vendor), ledger + metrics on",
            best["chat", True],
            "req/s",
            best["chat", False],
            "ledger + metrics off",
            note,
        ),
    ]


def run(quick: bool = False) -> list[Result]:
    return asyncio.run(_run(0.25, 3) if quick else _run(1.0, 5))
