"""Driven port: the database schema's migrations (upgrade at start or by ``switchyard migrate``)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["SchemaMigrator"]


class SchemaMigrator(Protocol):
    """Moves the schema between revisions; ``DatabaseError("migrate", ...)`` when the database refuses."""

    async def upgrade(self, revision: str = "head") -> None:
        """Apply every migration up to ``revision``."""
        ...

    async def downgrade(self, revision: str = "base") -> None:
        """Revert migrations down to ``revision`` (``base``: an empty schema)."""
        ...

    async def current(self) -> str | None:
        """The revision the database is at (``None`` when never migrated)."""
        ...
