"""Fakes for image generation: a scripted ImageProvider and an in-memory MediaStore."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from domain.catalog import ModelSpec
from domain.errors import NotFoundError
from domain.images import GeneratedImage, ImageRequest, ImageResult
from domain.media import MediaId, MediaObject, new_media_id
from domain.metering import Units
from domain.types import CustomerId

__all__ = ["InMemoryMediaStore", "ScriptedImageProvider", "images"]

#: A valid 1x1 PNG (what the scripted provider "draws" unless told otherwise).
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a1e7a2ba0000000049454e44ae426082"
)

Step = ImageResult | BaseException


def images(n: int = 1, *, data: bytes = PIXEL, revised: str | None = None, tokens: int = 0) -> ImageResult:
    """A successful result of ``n`` 1x1 PNGs."""
    made = tuple(GeneratedImage(data, "image/png", 1, 1, revised) for _ in range(n))
    return ImageResult(made, Units(images=n, output_tokens=tokens))


class ScriptedImageProvider:
    """Plays ``steps`` in order, one per call (the last one repeats): a result, or an exception to raise. Remembers
    every request and model it was given."""

    def __init__(self, *steps: Step, name: str = "scripted") -> None:
        self._name = name
        self._steps = list(steps) or [images()]
        self.requests: list[ImageRequest] = []
        self.models: list[ModelSpec] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def generate(self, request: ImageRequest, model: ModelSpec) -> ImageResult:
        step = self._steps[min(len(self.requests), len(self._steps) - 1)]
        self.requests.append(request)
        self.models.append(model)
        if isinstance(step, BaseException):
            raise step
        if len(step.images) == 1 and request.n > 1:  # a one-image script answers every n
            return ImageResult(step.images * request.n, Units(images=request.n))
        return step


class InMemoryMediaStore:
    """``objects`` maps id -> (description, bytes); another owner's id is ``NotFoundError`` like the real stores."""

    def __init__(self, *, ttl_s: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        self.objects: dict[MediaId, tuple[MediaObject, bytes]] = {}
        self._ttl_s = ttl_s
        self._clock = clock

    async def put(self, owner: CustomerId, data: bytes, content_type: str, *, kind: str) -> MediaObject:
        now = self._clock()
        media = MediaObject(
            id=new_media_id(),
            owner=owner,
            content_type=content_type,
            size=len(data),
            etag=f'"{hashlib.sha256(data).hexdigest()[:32]}"',
            created_at=now,
            expires_at=now + self._ttl_s,
            kind=kind,
        )
        self.objects[media.id] = (media, data)
        return media

    async def head(self, owner: CustomerId, media_id: MediaId) -> MediaObject:
        return self._find(owner, media_id)[0]

    async def read(self, owner: CustomerId, media_id: MediaId, start: int = 0, end: int | None = None) -> bytes:
        data = self._find(owner, media_id)[1]
        return data[start : (end + 1 if end is not None else None)]

    async def delete(self, owner: CustomerId, media_id: MediaId) -> None:
        found = self.objects.get(media_id)
        if found is not None and found[0].owner == owner:
            del self.objects[media_id]

    def _find(self, owner: CustomerId, media_id: MediaId) -> tuple[MediaObject, bytes]:
        found = self.objects.get(media_id)
        if found is None or found[0].owner != owner:
            raise NotFoundError(f"media {media_id!r} not found", context={"media_id": media_id})
        return found
