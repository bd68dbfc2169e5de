"""Driven port: the media store, where generated media are kept for their customer until they expire."""

from __future__ import annotations

from typing import Protocol

from domain.media import MediaId, MediaObject
from domain.types import CustomerId

__all__ = ["MediaStore"]


class MediaStore(Protocol):
    """Errors: ``NotFoundError`` for an unknown, expired or other customer's id; ``ServiceUnavailableError`` when
    the backend does not answer."""

    async def put(self, owner: CustomerId, data: bytes, content_type: str, *, kind: str) -> MediaObject:
        """Store ``data`` for ``owner`` under a new id, expiring after the store's time to live."""
        ...

    async def head(self, owner: CustomerId, media_id: MediaId) -> MediaObject:
        """The object's description (``owner`` must own it)."""
        ...

    async def read(self, owner: CustomerId, media_id: MediaId, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``start`` to ``end`` inclusive (the whole object by default), as an HTTP Range names them."""
        ...

    async def delete(self, owner: CustomerId, media_id: MediaId) -> None:
        """Forget the object (no error when it is already gone)."""
        ...
