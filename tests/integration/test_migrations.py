"""Migrations: up and down on SQLite and PostgreSQL, the models agree with them, and they run at start / by the CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sqlalchemy.migrator import AlembicSchemaMigrator
from adapters.sqlalchemy.tables import METADATA
from container import Container
from domain.errors import DatabaseError
from entrypoints.cli import main
from tests.integration.test_ledger_backends import BACKENDS, Backend, backend_engine, unreachable_engine
from tests.support.app import make_container, make_settings

HEAD = "0006_key_limits"


def _tables(sync: Connection) -> set[str]:
    return set(inspect(sync).get_table_names())


def _diff(sync: Connection) -> list[Any]:
    context = MigrationContext.configure(sync, opts={"compare_type": True, "compare_server_default": False})
    return list(compare_metadata(context, METADATA))


async def _tables_of(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return await connection.run_sync(_tables)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_migrations_go_up_and_down(backend: Backend, tmp_path: Path) -> None:
    """Upgrade creates the tables at head; downgrade to base removes them; upgrading again works."""
    async with backend_engine(backend, tmp_path) as engine:
        migrator = AlembicSchemaMigrator(engine)
        assert await migrator.current() is None
        await migrator.upgrade()
        assert await migrator.current() == HEAD
        assert "usage_records" in await _tables_of(engine)
        await migrator.downgrade("base")
        assert await migrator.current() is None
        assert "usage_records" not in await _tables_of(engine)
        await migrator.upgrade()
        assert await migrator.current() == HEAD


@pytest.mark.parametrize("backend", BACKENDS)
async def test_models_and_migrations_agree(backend: Backend, tmp_path: Path) -> None:
    """Autogenerate finds no difference between the tables module and the migrated schema."""
    async with backend_engine(backend, tmp_path) as engine:
        await AlembicSchemaMigrator(engine).upgrade()
        async with engine.connect() as connection:
            assert await connection.run_sync(_diff) == []


async def test_compare_detects_a_drift(tmp_path: Path) -> None:
    """The agreement check can fail: a schema without the migrations differs from the models."""
    async with backend_engine("sqlite", tmp_path) as engine, engine.connect() as connection:
        assert await connection.run_sync(_diff) != []


async def test_unreachable_database_is_a_database_error(tmp_path: Path) -> None:
    """A driver failure during a migration becomes DatabaseError("migrate")."""
    engine = unreachable_engine("sqlite", tmp_path)
    try:
        with pytest.raises(DatabaseError) as caught:
            await AlembicSchemaMigrator(engine).upgrade()
        assert caught.value.operation == "migrate"
    finally:
        await engine.dispose()
        await asyncio.sleep(0.05)  # aiosqlite stops a failed connection's thread asynchronously


async def _started(container: Container) -> None:
    result = container.init_resources()
    if result is not None:
        await result


async def _stopped(container: Container) -> None:
    result = container.shutdown_resources()
    if result is not None:
        await result


@pytest.mark.parametrize("auto_migrate", [True, False])
async def test_start_migrates_only_when_auto_migrate(tmp_path: Path, auto_migrate: bool) -> None:
    """Starting the container upgrades the schema when database.auto_migrate, and leaves it alone otherwise."""
    container = make_container(make_settings(tmp_path, database={"auto_migrate": auto_migrate}))
    await _started(container)
    try:
        resolved: Any = container.database_engine()  # an async resource resolves to an awaitable
        engine = await resolved
        assert isinstance(engine, AsyncEngine)
        assert ("usage_records" in await _tables_of(engine)) is auto_migrate
    finally:
        await _stopped(container)


def test_cli_migrate_upgrades_and_downgrades(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    """`switchyard migrate` goes through the container to head; `--downgrade base` empties the schema."""
    database = tmp_path / "cli.db"
    monkeypatch.setenv("SWITCHYARD_ENV", "test")
    monkeypatch.setenv("SWITCHYARD_DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    assert main(["migrate"]) == 0
    assert HEAD in capsys.readouterr().out
    sync_engine = create_engine(f"sqlite:///{database}")
    try:
        with sync_engine.connect() as connection:
            assert "usage_records" in _tables(connection)
        assert main(["migrate", "--downgrade", "base"]) == 0
        assert "base" in capsys.readouterr().out
        with sync_engine.connect() as connection:
            assert "usage_records" not in _tables(connection)
    finally:
        sync_engine.dispose()
