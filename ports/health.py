"""Driven port: a backing service that can say whether it answers (for ``/ready``)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["HealthCheck"]


class HealthCheck(Protocol):
    """One backing service; ``check`` returns when it answers and raises otherwise."""

    @property
    def name(self) -> str:
        """Short name shown in ``/ready`` (database, redis ...)."""
        ...

    async def check(self) -> None:
        """Return when the service answers; raise any exception when it does not."""
        ...
