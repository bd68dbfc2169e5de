"""Driven adapter: SQLAlchemy implementation of ``ApiKeyStore`` over the ``api_keys`` table.

Rows hold the key's SHA-256 (unique, the authentication lookup), its display prefix (indexed, for revocation by a
person) and its metadata, its own limits in one column each; scopes and the model allow-list are space-separated
(neither may contain a space). Driver errors become ``DatabaseError`` (503), so a database outage during
authentication is never mistaken for a bad key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sqlalchemy.tables import api_keys
from domain.api_keys import ApiKey
from domain.errors import ConflictError, DatabaseError
from domain.quotas import LIMIT_NAMES, Limits
from domain.types import CustomerId

__all__ = ["SqlAlchemyApiKeyStore"]

_COLUMNS = (
    api_keys.c.id,
    api_keys.c.prefix,
    api_keys.c.customer_id,
    api_keys.c.name,
    api_keys.c.created_at,
    api_keys.c.scopes,
    api_keys.c.models,
    api_keys.c.expires_at,
    api_keys.c.last_used_at,
    api_keys.c.revoked_at,
    *(api_keys.c[name] for name in LIMIT_NAMES),
)


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        prefix=row.prefix,
        customer_id=CustomerId(row.customer_id),
        name=row.name,
        created_at=row.created_at,
        scopes=frozenset(row.scopes.split()),
        models=None if row.models is None else frozenset(row.models.split()),
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        limits=Limits(**{name: getattr(row, name) for name in LIMIT_NAMES}),
    )


class SqlAlchemyApiKeyStore:
    """Issued keys in the application database (SQLite embedded, PostgreSQL in production)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, key: ApiKey, key_hash: str) -> None:
        row: dict[str, Any] = {
            "id": key.id,
            "key_hash": key_hash,
            "prefix": key.prefix,
            "customer_id": key.customer_id,
            "name": key.name,
            "scopes": " ".join(sorted(key.scopes)),
            "models": None if key.models is None else " ".join(sorted(key.models)),
            "created_at": key.created_at,
            "expires_at": key.expires_at,
            "last_used_at": key.last_used_at,
            "revoked_at": key.revoked_at,
            **{name: getattr(key.limits, name) for name in LIMIT_NAMES},
        }
        try:
            async with self._engine.begin() as connection:
                await connection.execute(api_keys.insert(), row)
        except IntegrityError as exc:  # a 256-bit collision, or an id reused by a caller
            raise ConflictError("an API key with this id or hash exists") from exc
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseError("add_api_key", "could not store the API key") from exc

    async def find_by_hash(self, key_hash: str) -> ApiKey | None:
        rows = await self._select(select(*_COLUMNS).where(api_keys.c.key_hash == key_hash), "find_api_key")
        return _key(rows[0]) if rows else None

    async def find(self, id_or_prefix: str) -> Sequence[ApiKey]:
        escaped = id_or_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = select(*_COLUMNS).where(
            or_(api_keys.c.id == id_or_prefix, api_keys.c.prefix.like(f"{escaped}%", escape="\\"))
        )
        return [_key(row) for row in await self._select(query, "find_api_key")]

    async def list(self, customer_id: str | None = None) -> Sequence[ApiKey]:
        query = select(*_COLUMNS).order_by(api_keys.c.created_at.desc(), api_keys.c.id)
        if customer_id is not None:
            query = query.where(api_keys.c.customer_id == customer_id)
        return [_key(row) for row in await self._select(query, "list_api_keys")]

    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None:
        stamp = update(api_keys).where(and_(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)))
        try:
            async with self._engine.begin() as connection:
                await connection.execute(stamp.values(revoked_at=at))
                rows = (await connection.execute(select(*_COLUMNS).where(api_keys.c.id == key_id))).all()
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseError("revoke_api_key", "could not revoke the API key") from exc
        return _key(rows[0]) if rows else None

    async def touch(self, last_used: Mapping[str, datetime]) -> None:
        if not last_used:
            return
        statement = (
            update(api_keys)
            .where(api_keys.c.id == bindparam("key_id"))
            .where(or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < bindparam("at")))
            .values(last_used_at=bindparam("at"))
        )
        rows = [{"key_id": key_id, "at": at} for key_id, at in last_used.items()]
        try:
            async with self._engine.begin() as connection:
                await connection.execute(statement, rows)
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseError("touch_api_keys", "could not record when API keys were used") from exc

    async def _select(self, query: Any, operation: str) -> Sequence[Row[Any]]:
        try:
            async with self._engine.connect() as connection:
                return (await connection.execute(query)).all()
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseError(operation, "could not read API keys") from exc
