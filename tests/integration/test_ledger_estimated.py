"""The ``estimated`` flag on SQLite and PostgreSQL: written, counted in totals, and migrated up and down with data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sqlalchemy.ledger import LedgerOptions, SqlAlchemyUsageLedger
from adapters.sqlalchemy.migrator import AlembicSchemaMigrator
from adapters.sqlalchemy.tables import usage_records
from domain.usage import UsageRecord
from tests.integration.test_ledger_backends import BACKENDS, Backend, backend_engine

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _record(n: int, *, estimated: bool) -> UsageRecord:
    return UsageRecord(
        request_id=f"req-{n}",
        customer_id="alice",
        capability="text",
        provider="openai",
        model="gpt-x",
        outcome="cancelled" if estimated else "done",
        created_at=T0 + timedelta(seconds=n),
        input_tokens=10,
        output_tokens=5,
        cost_usd=0.001,
        estimated=estimated,
    )


async def _estimated_column(engine: AsyncEngine) -> list[bool]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(usage_records.c.estimated).order_by(usage_records.c.request_id))
        return [bool(value) for value in rows.scalars()]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_estimated_records_are_stored_and_counted(backend: Backend, tmp_path: Path) -> None:
    """A record marked estimated keeps the mark in its row, and totals count how many requests were estimated."""
    async with backend_engine(backend, tmp_path) as engine:
        await AlembicSchemaMigrator(engine).upgrade()
        ledger = SqlAlchemyUsageLedger(engine, LedgerOptions(spill_path=tmp_path / "spill.jsonl"))
        await ledger.start()
        for n, estimated in enumerate((True, False, True)):
            await ledger.record(_record(n, estimated=estimated))
        await ledger.aclose()
        assert await _estimated_column(engine) == [True, False, True]
        [total] = await ledger.totals("alice", start=None, end=None, group_by="model")
        assert (total.requests, total.estimated, total.errors) == (3, 2, 0)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_estimated_migration_keeps_rows_both_ways(backend: Backend, tmp_path: Path) -> None:
    """Upgrading adds `estimated` (false for existing rows); downgrading drops only the column, never the rows."""
    async with backend_engine(backend, tmp_path) as engine:
        migrator = AlembicSchemaMigrator(engine)
        await migrator.upgrade("0001_usage_records")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO usage_records (id, request_id, customer_id, capability, provider, model, outcome,"
                    " created_at) VALUES ('old', 'req-old', 'alice', 'text', 'openai', 'gpt-x', 'done', :at)"
                ),
                {"at": T0.replace(tzinfo=None) if backend == "sqlite" else T0},
            )
        await migrator.upgrade()
        assert await _estimated_column(engine) == [False]
        await migrator.downgrade("0001_usage_records")
        async with engine.connect() as connection:
            columns = (await connection.execute(text("SELECT * FROM usage_records"))).keys()
            count = (await connection.execute(text("SELECT count(*) FROM usage_records"))).scalar_one()
        assert "estimated" not in columns
        assert count == 1
