"""Driven adapter: SQLAlchemy implementation of ``QuotaOverrideStore`` over the ``quota_overrides`` table (a NULL
column inherits the ``quotas.*`` default; -1 lifts the limit). Driver errors become ``DatabaseError`` (503)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sqlalchemy.tables import quota_overrides
from domain.errors import DatabaseError
from domain.quotas import LIMIT_NAMES, LimitOverride

__all__ = ["SqlAlchemyQuotaOverrideStore"]

_COLUMNS = (quota_overrides.c.customer_id, *(quota_overrides.c[name] for name in LIMIT_NAMES))


def _override(row: Row[Any]) -> LimitOverride:
    return LimitOverride(**{name: getattr(row, name) for name in LIMIT_NAMES})


class SqlAlchemyQuotaOverrideStore:
    """Per-customer limits in the application database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, customer_id: str) -> LimitOverride | None:
        query = select(*_COLUMNS).where(quota_overrides.c.customer_id == customer_id)
        try:
            async with self._engine.connect() as connection:
                row = (await connection.execute(query)).first()
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseError("read_quota_override", "could not read the customer's limits") from exc
        return _override(row) if row is not None else None

    async def put(self, customer_id: str, override: LimitOverride) -> None:
        values = {name: getattr(override, name) for name in LIMIT_NAMES} | {"updated_at": datetime.now(UTC)}
        where = quota_overrides.c.customer_id == customer_id
        try:
            # Update-then-insert in one transaction: portable across SQLite and PostgreSQL without dialect upserts.
            async with self._engine.begin() as connection:
                updated = await connection.execute(quota_overrides.update().where(where).values(**values))
                if updated.rowcount == 0:
                    await connection.execute(quota_overrides.insert().values(customer_id=customer_id, **values))
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseError("write_quota_override", "could not store the customer's limits") from exc

    async def delete(self, customer_id: str) -> bool:
        try:
            async with self._engine.begin() as connection:
                result = await connection.execute(
                    delete(quota_overrides).where(quota_overrides.c.customer_id == customer_id)
                )
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseError("delete_quota_override", "could not remove the customer's limits") from exc
        return bool(result.rowcount)

    async def list(self) -> Mapping[str, LimitOverride]:
        query = select(*_COLUMNS).order_by(quota_overrides.c.customer_id)
        try:
            async with self._engine.connect() as connection:
                rows = (await connection.execute(query)).all()
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseError("list_quota_overrides", "could not read customers' limits") from exc
        return {row.customer_id: _override(row) for row in rows}
