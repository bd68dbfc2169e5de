"""Driven adapter: Alembic implementation of ``SchemaMigrator``, configured in code (no alembic.ini).

Alembic is synchronous; it runs on the async engine's connection through ``run_sync``, inside one transaction, so a
failed migration leaves the schema where it was (PostgreSQL; SQLite DDL is transactional too).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.errors import DatabaseError, ValidationError
from ports.schema import SchemaMigrator

__all__ = ["MIGRATIONS_DIR", "AlembicSchemaMigrator", "alembic_config", "schema_resource", "why"]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for this package's migrations, optionally bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


class AlembicSchemaMigrator:
    """Upgrade/downgrade the schema through the async engine; driver errors become ``DatabaseError("migrate")``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._where = engine.url.render_as_string(hide_password=True)  # for error messages: never the password

    async def _run(self, step: Callable[[Config], None], what: str) -> None:
        try:
            async with self._engine.begin() as connection:
                await connection.run_sync(lambda sync: step(alembic_config(sync)))
        except CommandError as exc:  # an unknown or ambiguous revision: the user's input, not the database
            raise ValidationError("revision", str(exc)) from None
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseError(
                "migrate", f"could not {what} the database schema of {self._where}: {why(exc)}"
            ) from exc

    async def upgrade(self, revision: str = "head") -> None:
        """Apply every migration up to ``revision``."""
        await self._run(lambda config: command.upgrade(config, revision), "upgrade")

    async def downgrade(self, revision: str = "base") -> None:
        """Revert migrations down to ``revision``."""
        await self._run(lambda config: command.downgrade(config, revision), "downgrade")

    async def current(self) -> str | None:
        """The database's revision, ``None`` before the first migration."""
        try:
            async with self._engine.connect() as connection:
                return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseError("migrate", f"could not read the schema revision of {self._where}: {why(exc)}") from exc


def why(exc: BaseException) -> str:
    """One line saying why the database failed, from the driver's own error (connection refused, unknown host, bad
    password, missing database), without SQLAlchemy's statement and link: what a start-up failure prints."""
    cause: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    while cause.__cause__ is not None and str(cause.__cause__).strip():  # the driver's error under its DB-API wrapper
        cause = cause.__cause__
    text = " ".join(str(cause).split()) or type(cause).__name__
    return f"{type(cause).__name__}: {text}"[:300]


async def schema_resource(
    migrator: SchemaMigrator, auto_migrate: bool, *, attempts: int = 3, retry_delay_s: float = 0.5
) -> AsyncIterator[bool]:
    """Container resource: upgrade to head at start when ``database.auto_migrate``; yields whether it did.

    Several Hypercorn workers start together and may race to migrate: the loser's DDL fails, and its retry finds
    the schema at head already (a no-op). A database that stays down fails start-up after ``attempts``.
    """
    if auto_migrate:
        for attempt in range(1, attempts + 1):
            try:
                await migrator.upgrade()
                break
            except DatabaseError:
                if attempt == attempts:
                    raise
                await asyncio.sleep(retry_delay_s * attempt)
    yield auto_migrate
