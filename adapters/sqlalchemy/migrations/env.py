"""Alembic environment: runs on the connection handed over by ``AlembicSchemaMigrator`` (async engine, sync shim)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from adapters.sqlalchemy.tables import METADATA


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=METADATA,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run migrations with `switchyard migrate` (AlembicSchemaMigrator), not the alembic CLI")
    _run(connection)


_main()
