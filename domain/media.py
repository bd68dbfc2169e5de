"""Domain: generated media (images now, audio and video next) kept for their customer in the media store.

A media object belongs to one customer: asking for another customer's id is the same ``not_found`` as an unknown
id, so ids leak nothing. Objects expire (``expires_at``, wall-clock seconds); an expired object is gone.
"""

from __future__ import annotations

import secrets
from typing import NewType

from attrs import frozen

from domain.types import CustomerId

__all__ = ["MediaId", "MediaObject", "media_path", "new_media_id"]

MediaId = NewType("MediaId", str)


def new_media_id() -> MediaId:
    """An unguessable media id (128 random bits, URL-safe)."""
    return MediaId("md_" + secrets.token_urlsafe(16))


def media_path(media_id: MediaId) -> str:
    """The API path that serves a media object's bytes (``GET``, Range-capable)."""
    return f"/api/v1/media/{media_id}"


@frozen
class MediaObject:
    """What the store knows about one object besides its bytes."""

    id: MediaId
    owner: CustomerId
    content_type: str
    size: int
    etag: str
    """A strong validator of the bytes (quoted, as sent in the ``ETag`` header)."""
    created_at: float
    expires_at: float | None = None
    kind: str = "image"
