"""Driven adapter: ``FakeImageProvider``, a deterministic ImageProvider that draws real, decodable images.

Each image is a grid of coloured blocks whose colours come from a hash of the prompt, the seed and the image's
index, so the same request gives the same bytes and another prompt gives other pixels. It honours ``n``, ``size``
(``"<w>x<h>"``, one of the entry's ``image_sizes`` when it lists them; ``auto`` is 1024x1024), ``output_format``
(PNG, JPEG, WebP) and ``background = "transparent"``. With ``input_images`` (an edit) the first input is decoded
and tinted, so an edit of a broken file fails as a vendor would.

Faults come from ``metadata`` (or the entry's ``default_params``), as for the fake text provider: ``fake_error``
(``rate_limited``, ``provider_error`` (final), ``overloaded`` (retryable, a 5xx), ``timeout``, ``auth``,
``content_policy``), ``fake_retry_after`` seconds for a 429, ``fake_fail_times = N`` to fail only the first N calls
with the same ``fake_key`` (default: model and prompt), and ``fake_delay_ms`` before answering.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Awaitable, Callable
from typing import Any, Final

from PIL import Image, UnidentifiedImageError

from adapters.fake.faults import FailureCounter
from domain.catalog import ModelSpec
from domain.errors import (
    ValidationError,
)
from domain.images import GeneratedImage, ImageRequest, ImageResult, mime_type_of, parse_size
from domain.metering import Units

__all__ = ["FAKE_IMAGE_ERRORS", "FakeImageProvider"]

FAKE_IMAGE_ERRORS: Final = ("rate_limited", "provider_error", "overloaded", "timeout", "auth", "content_policy")
DEFAULT_SIZE: Final = (1024, 1024)
MIN_SIDE: Final = 16
MAX_SIDE: Final = 4096
_GRID: Final = 8  # blocks per side: enough for distinct prompts to look distinct, cheap to scale up
_PIL_FORMATS: Final = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def _dimensions(size: str | None, model: ModelSpec) -> tuple[int, int]:
    if size is None or size == "auto":
        return DEFAULT_SIZE
    if model.image_sizes and size not in model.image_sizes:
        raise ValidationError("size", f"{model.qualified_id} draws only {', '.join(model.image_sizes)}")
    parsed = parse_size(size)
    if parsed is None or not MIN_SIDE <= min(parsed) <= max(parsed) <= MAX_SIDE:
        raise ValidationError(
            "size", f"expected '<width>x<height>' with sides from {MIN_SIDE} to {MAX_SIDE} pixels, or 'auto'"
        )
    return parsed


def _palette(digest: bytes, alpha: bool) -> list[tuple[int, ...]]:
    """``_GRID**2`` colours from a digest stretched by hashing (deterministic, well spread)."""
    stream = b"".join(hashlib.sha256(digest + bytes([i])).digest() for i in range(_GRID * _GRID * 4 // 32 + 1))
    colours: list[tuple[int, ...]] = []
    for block in range(_GRID * _GRID):
        r, g, b, a = stream[block * 4 : block * 4 + 4]
        colours.append((r, g, b, 64 + a % 192) if alpha else (r, g, b))
    return colours


def draw(prompt: str, *, index: int, seed: int | None, size: tuple[int, int], transparent: bool) -> Image.Image:
    """The image for one prompt: a ``_GRID`` x ``_GRID`` block pattern scaled (nearest) to ``size``."""
    digest = hashlib.sha256(f"{seed}|{index}|{prompt}".encode()).digest()
    mode = "RGBA" if transparent else "RGB"
    small = Image.new(mode, (_GRID, _GRID))
    small.putdata(_palette(digest, transparent))
    return small.resize(size, Image.Resampling.NEAREST)


def _tinted(source: bytes, prompt: str, index: int, size: tuple[int, int] | None) -> Image.Image:
    try:
        with Image.open(io.BytesIO(source)) as opened:
            base = opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValidationError("input_images[0]", "fake: the input image could not be decoded") from exc
    if size is not None:
        base = base.resize(size)
    overlay = draw(prompt, index=index, seed=None, size=base.size, transparent=False)
    return Image.blend(base, overlay, 0.5)


def encode(image: Image.Image, output_format: str) -> bytes:
    """``image`` in ``output_format`` (JPEG drops the alpha channel: it has none)."""
    if output_format == "jpeg" and image.mode != "RGB":
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=_PIL_FORMATS[output_format])
    return buffer.getvalue()


class FakeImageProvider:
    """The ``fake`` vendor's ``ImageProvider``. ``sleep`` is injectable so delays cost nothing in unit tests."""

    def __init__(self, *, name: str = "fake", sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._name = name
        self._sleep = sleep
        self._failures = FailureCounter()
        self.calls = 0

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def generate(self, request: ImageRequest, model: ModelSpec) -> ImageResult:
        """``request.n`` images of the asked size and format, or the scripted fault."""
        self.calls += 1
        await self._failures.play(
            self._name,
            lambda key: self._option(request, model, key),
            f"{model.qualified_id}:{request.prompt}",
            self._sleep,
            kinds=FAKE_IMAGE_ERRORS,
        )
        output_format = request.output_format or "png"
        transparent = request.background == "transparent" and output_format != "jpeg"
        dimensions = _dimensions(request.size, model)
        explicit = None if request.size in (None, "auto") else dimensions
        images = []
        for index in range(request.n):
            if request.input_images:
                picture = _tinted(request.input_images[0].data, request.prompt, index, explicit)
            else:
                picture = draw(request.prompt, index=index, seed=request.seed, size=dimensions, transparent=transparent)
            data = encode(picture, output_format)
            width, height = picture.size
            images.append(GeneratedImage(data, mime_type_of(output_format), width, height))
        return ImageResult(tuple(images), Units(images=len(images)))

    def _option(self, request: ImageRequest, model: ModelSpec, key: str) -> Any:
        if key in request.metadata:
            return request.metadata[key]
        return model.default_params.get(key)
