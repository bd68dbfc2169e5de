"""Database backends for the ledger and migration tests (SQLite file, PostgreSQL in a throw-away schema), and a TCP
proxy that can cut PostgreSQL off and bring it back, to stage real outages."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.support.services import require_service

__all__ = ["BACKENDS", "Backend", "TcpProxy", "backend_engine", "unreachable_engine"]

Backend = Literal["sqlite", "postgres"]
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgres")


def _postgres_engine(url: str, schema: str, *, port: int | None = None) -> AsyncEngine:
    target = make_url(url)
    if port is not None:
        target = target.set(host="127.0.0.1", port=port)
    # Every connection works in the test's own schema, so parallel runs never see each other's tables.
    return create_async_engine(target, connect_args={"server_settings": {"search_path": schema}, "timeout": 5})


@contextlib.asynccontextmanager
async def backend_engine(
    backend: Backend, tmp_path: Path, *, proxy_port: int | None = None
) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database: a SQLite file under ``tmp_path``, or a fresh PostgreSQL schema (dropped after).

    With ``proxy_port`` the PostgreSQL engine connects through that port (a ``TcpProxy``).
    """
    if backend == "sqlite":
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / f'ledger-{uuid.uuid4().hex[:8]}.db'}")
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    url = require_service("postgres")
    schema = f"test_ledger_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = _postgres_engine(url, schema, port=proxy_port)
    try:
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


def unreachable_engine(backend: Backend, tmp_path: Path) -> AsyncEngine:
    """An engine whose database cannot be reached: nothing listens on the port / the SQLite folder is missing."""
    if backend == "sqlite":
        return create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing-folder' / 'ledger.db'}")
    return create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/test", connect_args={"timeout": 2})


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``down()`` drops every connection and refuses new ones until ``up()``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.is_up = True
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.is_up:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._writers.difference_update((writer, up_writer))

    def down(self) -> None:
        self.is_up = False
        for writer in list(self._writers):
            writer.transport.abort()

    def up(self) -> None:
        self.is_up = True

    async def close(self) -> None:
        self.down()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def test_proxy_cuts_and_restores_postgres(tmp_path: Path) -> None:
    """The outage helper really cuts PostgreSQL off and brings it back (so the outage tests test an outage)."""
    port = make_url(require_service("postgres")).port or 5432
    proxy = TcpProxy(port)
    await proxy.start()
    try:
        async with backend_engine("postgres", tmp_path, proxy_port=proxy.port) as engine:
            async with engine.connect() as connection:
                assert (await connection.execute(text("SELECT 1"))).scalar() == 1
            proxy.down()
            with pytest.raises((SQLAlchemyError, OSError)):
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
            proxy.up()
            async with engine.connect() as connection:
                assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await proxy.close()
