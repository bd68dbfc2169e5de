"""Driven adapter: the async engine as a container resource, and its ``HealthCheck``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from settings.model import DatabaseSettings

__all__ = ["SqlAlchemyHealthCheck", "create_engine", "engine_resource"]


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """An async engine for ``database.url``; an embedded SQLite file gets its folder created."""
    url = make_url(settings.url.reveal())
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        return create_async_engine(url, echo=settings.echo)
    return create_async_engine(url, echo=settings.echo, pool_size=settings.pool_size, pool_pre_ping=True)


async def engine_resource(settings: DatabaseSettings) -> AsyncIterator[AsyncEngine]:
    """Container resource: create the engine on init, dispose of its pool on shutdown."""
    engine = create_engine(settings)
    try:
        yield engine
    finally:
        await engine.dispose()


class SqlAlchemyHealthCheck:
    """``SELECT 1`` through the engine."""

    name = "database"

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def check(self) -> None:
        """Return when the database answers."""
        async with self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
