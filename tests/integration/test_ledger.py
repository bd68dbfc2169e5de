"""SqlAlchemyUsageLedger against SQLite and PostgreSQL: batching, outages, the spill file, shutdown, totals."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.sqlalchemy.ledger import LedgerOptions, SqlAlchemyUsageLedger
from adapters.sqlalchemy.migrator import AlembicSchemaMigrator
from adapters.sqlalchemy.spill import SpillFile
from adapters.sqlalchemy.tables import usage_records
from domain.errors import DatabaseError
from domain.usage import UsageRecord
from tests.fakes.metrics import RecordingMetrics
from tests.integration.test_ledger_backends import BACKENDS, Backend, TcpProxy, backend_engine, unreachable_engine
from tests.support.app import make_container, make_settings
from tests.support.services import require_service

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _record(
    n: int, *, customer: str = "alice", model: str = "gpt-x", provider: str = "openai", **kw: object
) -> UsageRecord:
    fields: dict[str, object] = {
        "request_id": f"req-{n}",
        "customer_id": customer,
        "capability": "text",
        "provider": provider,
        "model": model,
        "outcome": "done",
        "created_at": T0 + timedelta(seconds=n),
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": 0.001,
        **kw,
    }
    return UsageRecord(**fields)  # type: ignore[arg-type]


def _options(tmp_path: Path, **changes: float) -> LedgerOptions:
    base = {
        "queue_size": 10_000,
        "batch_size": 500,
        "flush_interval_s": 0.05,
        "retry_base_s": 0.02,
        "retry_max_s": 0.1,
        "write_timeout_s": 5.0,
        "shutdown_timeout_s": 0.5,
        **changes,
    }
    return LedgerOptions(spill_path=tmp_path / "spill" / "usage-spill.jsonl", **base)  # type: ignore[arg-type]


async def _rows(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(usage_records))).scalar_one())


async def _request_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return sorted((await connection.execute(select(usage_records.c.request_id))).scalars())


async def _eventually(engine: AsyncEngine, expected: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (count := await _rows(engine)) != expected:
        assert time.monotonic() < deadline, f"{count} rows, expected {expected}"
        await asyncio.sleep(0.05)


@pytest.fixture(params=BACKENDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated database of each backend."""
    async with backend_engine(request.param, tmp_path) as database:
        await AlembicSchemaMigrator(database).upgrade()
        yield database


class Outage:
    """A migrated database that can be made unavailable and available again while the ledger keeps its engine."""

    def __init__(self, engine: AsyncEngine, backend: Backend, proxy: TcpProxy | None, path: Path | None) -> None:
        self.engine = engine
        self._backend = backend
        self._proxy = proxy
        self._path = path
        self._lock: sqlite3.Connection | None = None

    def down(self) -> None:
        if self._proxy is not None:
            self._proxy.down()
        else:  # SQLite: another connection holds an exclusive lock, so every write is refused
            assert self._path is not None
            self._lock = sqlite3.connect(self._path, isolation_level=None)
            self._lock.execute("BEGIN EXCLUSIVE")

    def up(self) -> None:
        if self._proxy is not None:
            self._proxy.up()
        elif self._lock is not None:
            self._lock.rollback()
            self._lock.close()
            self._lock = None


@contextlib.asynccontextmanager
async def _outage(backend: Backend, tmp_path: Path) -> AsyncIterator[Outage]:
    if backend == "sqlite":
        path = tmp_path / "outage.db"
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 0.05})
        await AlembicSchemaMigrator(engine).upgrade()
        outage = Outage(engine, backend, None, path)
        try:
            yield outage
        finally:
            outage.up()
            await engine.dispose()
        return
    proxy = TcpProxy(make_url(require_service("postgres")).port or 5432)
    await proxy.start()
    try:
        async with backend_engine("postgres", tmp_path, proxy_port=proxy.port) as engine:
            await AlembicSchemaMigrator(engine).upgrade()
            yield Outage(engine, backend, proxy, None)
    finally:
        await proxy.close()


async def test_records_are_written_in_batches(engine: AsyncEngine, tmp_path: Path) -> None:
    """1200 queued records are written as three batches of at most 500, each record once."""
    metrics = RecordingMetrics()
    ledger = SqlAlchemyUsageLedger(engine, _options(tmp_path), metrics)
    await ledger.start()
    for n in range(1200):
        await ledger.record(_record(n))
    await _eventually(engine, 1200)
    await ledger.aclose()
    assert ledger.stats.batches == 3
    assert ledger.stats.written == 1200
    assert metrics.total("ledger_records_written_total") == 1200
    assert metrics.gauges[("ledger_queue_depth", ())] == 0
    assert await _request_ids(engine) == sorted(f"req-{n}" for n in range(1200))


async def test_record_returns_without_touching_the_database(tmp_path: Path) -> None:
    """record() is off the hot path: it returns at once even when the database never answers."""
    engine = unreachable_engine("postgres", tmp_path)
    ledger = SqlAlchemyUsageLedger(engine, _options(tmp_path, shutdown_timeout_s=0.1))
    started = time.perf_counter()
    for n in range(100):
        await ledger.record(_record(n))
    assert time.perf_counter() - started < 0.1
    await ledger.aclose()
    await engine.dispose()
    assert ledger.stats.spilled == 100


async def test_shutdown_flushes_the_queue(engine: AsyncEngine, tmp_path: Path) -> None:
    """Records still queued at shutdown are written before aclose() returns; nothing is spilled."""
    ledger = SqlAlchemyUsageLedger(engine, _options(tmp_path))
    await ledger.start()
    for n in range(300):
        await ledger.record(_record(n))
    await ledger.aclose()
    assert await _rows(engine) == 300
    assert not SpillFile(_options(tmp_path).spill_path).pending()
    assert ledger.stats.spilled == 0


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_outage_loses_no_record(backend: Backend, tmp_path: Path) -> None:
    """Database down: records wait in memory, past the bound in the spill file; on recovery each is written once."""
    metrics = RecordingMetrics()
    async with _outage(backend, tmp_path) as outage:
        ledger = SqlAlchemyUsageLedger(outage.engine, _options(tmp_path, queue_size=20, batch_size=10), metrics)
        await ledger.start()
        outage.down()
        for n in range(60):
            await ledger.record(_record(n))
        deadline = time.monotonic() + 10
        while ledger.stats.flush_failures < 2:  # the writer is retrying its batch
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert ledger.stats.spilled > 0
        assert metrics.total("ledger_flush_failures_total") >= 2
        outage.up()
        await _eventually(outage.engine, 60)
        await ledger.aclose()
        assert await _request_ids(outage.engine) == sorted(f"req-{n}" for n in range(60))
        assert not SpillFile(_options(tmp_path).spill_path).pending()
        assert metrics.total("ledger_spilled_records_total") == ledger.stats.spilled


@pytest.mark.parametrize("backend", BACKENDS)
async def test_spill_file_is_replayed_on_recovery(backend: Backend, tmp_path: Path) -> None:
    """An unreachable database spills everything at shutdown; the next ledger on a reachable one replays it all."""
    down = unreachable_engine(backend, tmp_path)
    first = SqlAlchemyUsageLedger(down, _options(tmp_path, queue_size=10, shutdown_timeout_s=0.2))
    await first.start()
    for n in range(40):
        await first.record(_record(n))
    await first.aclose()
    await down.dispose()
    await asyncio.sleep(0.05)  # aiosqlite stops a failed connection's thread asynchronously
    spill = SpillFile(_options(tmp_path).spill_path)
    assert spill.pending()
    assert first.stats.spilled == 40

    async with backend_engine(backend, tmp_path) as engine:
        await AlembicSchemaMigrator(engine).upgrade()
        second = SqlAlchemyUsageLedger(engine, _options(tmp_path))
        await second.start()
        await _eventually(engine, 40)
        await second.aclose()
        assert second.stats.replayed == 40
        assert await _request_ids(engine) == sorted(f"req-{n}" for n in range(40))
        assert not spill.pending()


async def test_replaying_twice_never_duplicates(engine: AsyncEngine, tmp_path: Path) -> None:
    """A spill file whose records are already written (a crash mid-replay) adds no row; a bad line is kept aside."""
    ledger = SqlAlchemyUsageLedger(engine, _options(tmp_path))
    await ledger.start()
    for n in range(5):
        await ledger.record(_record(n, id=f"fixed-{n}"))
    await ledger.aclose()
    spill = SpillFile(_options(tmp_path).spill_path)
    spill.append([_record(n, id=f"fixed-{n}") for n in range(5)])
    spill.append_lines(["{not json\n"])
    again = SqlAlchemyUsageLedger(engine, _options(tmp_path))
    await again.start()
    await again.aclose()
    assert await _rows(engine) == 5
    assert not spill.pending()
    assert spill.rejected_path.read_text() == "{not json\n"


async def test_totals_group_one_customer_in_a_half_open_window(engine: AsyncEngine, tmp_path: Path) -> None:
    """Totals count only the customer's records in [start, end), grouped by model, provider or UTC day."""
    ledger = SqlAlchemyUsageLedger(engine, _options(tmp_path))
    await ledger.start()
    day = timedelta(days=1)
    records = [
        _record(1, model="gpt-x", provider="openai", created_at=T0),
        _record(2, model="gpt-x", provider="openai", created_at=T0 + timedelta(hours=1), outcome="provider_error"),
        _record(3, model="claude-y", provider="anthropic", created_at=T0 + day, input_tokens=7, cost_usd=0.5),
        _record(4, model="claude-y", provider="anthropic", created_at=T0 + 2 * day),  # at `end`: excluded
        _record(5, customer="bob", created_at=T0),
        _record(6, created_at=T0 - timedelta(seconds=1)),  # before `start`: excluded
        _record(7, created_at=T0 + day, outcome="cancelled"),
    ]
    for record in records:
        await ledger.record(record)
    await ledger.aclose()
    window = {"start": T0, "end": T0 + 2 * day}

    by_model = {t.group: t for t in await ledger.totals("alice", group_by="model", **window)}
    assert set(by_model) == {"gpt-x", "claude-y"}
    assert (by_model["gpt-x"].requests, by_model["gpt-x"].errors, by_model["gpt-x"].input_tokens) == (3, 1, 30)
    assert (by_model["claude-y"].requests, by_model["claude-y"].input_tokens) == (1, 7)
    assert by_model["claude-y"].cost_usd == pytest.approx(0.5)

    by_provider = [(t.group, t.requests) for t in await ledger.totals("alice", group_by="provider", **window)]
    assert by_provider == [("anthropic", 1), ("openai", 3)]
    by_day = [(t.group, t.requests) for t in await ledger.totals("alice", group_by="day", **window)]
    assert by_day == [("2026-11-01", 2), ("2026-11-02", 2)]
    everything = await ledger.totals("alice", start=None, end=None, group_by="provider")
    assert sum(t.requests for t in everything) == 6
    assert await ledger.totals("carol", start=None, end=None, group_by="model") == []


async def test_created_at_round_trips_as_utc(engine: AsyncEngine, tmp_path: Path) -> None:
    """A timestamp with another offset is stored as the same instant and grouped by its UTC day, not its local one."""
    ledger = SqlAlchemyUsageLedger(engine, _options(tmp_path))
    await ledger.start()
    pacific_evening = datetime(2026, 11, 1, 20, 30, tzinfo=timezone(timedelta(hours=-8)))  # 2026-11-02 04:30 UTC
    await ledger.record(_record(1, created_at=pacific_evening))
    await ledger.aclose()
    by_day = await ledger.totals("alice", start=None, end=None, group_by="day")
    assert [t.group for t in by_day] == ["2026-11-02"]
    async with engine.connect() as connection:
        stored = (await connection.execute(select(usage_records.c.created_at))).scalar_one()
    assert stored == pacific_evening
    assert stored.tzinfo is not None


async def test_driver_errors_become_database_errors(tmp_path: Path) -> None:
    """Reading totals from an unreachable database raises DatabaseError naming the operation."""
    engine = unreachable_engine("postgres", tmp_path)
    ledger = SqlAlchemyUsageLedger(engine, _options(tmp_path))
    try:
        with pytest.raises(DatabaseError) as caught:
            await ledger.totals("alice", start=None, end=None, group_by="model")
        assert caught.value.operation == "usage_totals"
    finally:
        await engine.dispose()


async def test_container_shutdown_flushes_before_the_engine_goes(tmp_path: Path) -> None:
    """Through the container: records queued just before shutdown reach the database, none are spilled."""
    settings = make_settings(tmp_path)
    container = make_container(settings)
    started = container.init_resources()
    if started is not None:
        await started
    resolved: Any = container.usage_ledger()
    ledger = await resolved if inspect.isawaitable(resolved) else resolved
    assert isinstance(ledger, SqlAlchemyUsageLedger)
    for n in range(50):
        await ledger.record(_record(n))
    stopped = container.shutdown_resources()
    if stopped is not None:
        await stopped
    assert ledger.stats.written == 50
    assert ledger.stats.spilled == 0
    assert not (settings.app.data_dir / "usage-spill.jsonl").exists()
    engine = create_async_engine(settings.database.url.reveal())
    try:
        assert await _rows(engine) == 50
    finally:
        await engine.dispose()
