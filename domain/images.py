"""Domain: image generation requests, what a vendor returns for them, and what the API answers.

Sizes are ``"<width>x<height>"`` in pixels for every vendor (the catalog lists the ones a model accepts); an adapter
whose vendor speaks in aspect ratios translates. Images travel as decoded bytes inside the core; base64 exists only
at the HTTP edge, when a client asks for it.
"""

from __future__ import annotations

import re
import struct
from typing import Final, Literal

from attrs import field, frozen

from domain.metering import Units

__all__ = [
    "OUTPUT_FORMATS",
    "GeneratedImage",
    "ImageGeneration",
    "ImageItem",
    "ImageRequest",
    "ImageResult",
    "ImageUsage",
    "InputImage",
    "OutputFormat",
    "mime_type_of",
    "parse_size",
    "png_size",
]

OutputFormat = Literal["png", "jpeg", "webp"]
OUTPUT_FORMATS: Final = ("png", "jpeg", "webp")
_SIZE: Final = re.compile(r"^([1-9]\d{0,4})x([1-9]\d{0,4})$")
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"


def parse_size(size: str) -> tuple[int, int] | None:
    """``(width, height)`` of a ``"<width>x<height>"`` size, or ``None`` when it is not one (``"auto"``)."""
    match = _SIZE.match(size)
    return (int(match.group(1)), int(match.group(2))) if match else None


def png_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a PNG's header (its first chunk, IHDR), or ``None`` when ``data`` is not a PNG."""
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def mime_type_of(output_format: OutputFormat | None) -> str:
    """The MIME type of an output format (PNG when none was asked for)."""
    return f"image/{output_format or 'png'}"


@frozen
class InputImage:
    """An image given to an edit: its bytes and MIME type."""

    data: bytes
    mime_type: str


@frozen
class ImageRequest:
    """What to draw and how. ``None`` leaves a choice to the model's default.

    ``include_b64`` asks for the bytes inline (base64) besides the media URL; it does not reach the vendor.
    ``fallbacks`` are models to try, in order, when this one fails (as for chat)."""

    model: str
    prompt: str
    n: int = 1
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: OutputFormat | None = None
    input_images: tuple[InputImage, ...] = ()
    seed: int | None = None
    negative_prompt: str | None = None
    include_b64: bool = False
    fallbacks: tuple[str, ...] = ()
    metadata: dict[str, str] = field(factory=dict)


@frozen
class GeneratedImage:
    """One image as the vendor produced it (decoded bytes, never base64)."""

    data: bytes
    mime_type: str
    width: int | None = None
    height: int | None = None
    revised_prompt: str | None = None


@frozen
class ImageResult:
    """One provider call's images and the units it consumed (``images``, and tokens where the vendor counts them)."""

    images: tuple[GeneratedImage, ...]
    units: Units


# --- what the API answers ---------------------------------------------------------------------------------------


@frozen
class ImageItem:
    """One generated image as the client sees it: where to fetch it, and its bytes inline only when asked for."""

    media_id: str
    url: str
    """The API path serving the bytes (``GET``, authenticated as the caller)."""
    mime_type: str
    width: int | None
    height: int | None
    revised_prompt: str | None
    """The prompt the vendor actually drew, when it rewrote ours (DALL-E 3, Imagen's prompt enhancer)."""
    b64_json: str | None = None
    """Base64 of the bytes when the request set ``include_b64``; ``null`` otherwise."""


@frozen
class ImageUsage:
    """What the generation consumed: images, vendor tokens where counted, and the cost (``None``: unpriced)."""

    images: int
    cost_usd: float | None
    input_tokens: int = 0
    output_tokens: int = 0


@frozen
class ImageGeneration:
    """``data`` of ``POST /api/v1/images/generations``."""

    model: str
    """The model that served, ``provider/id``."""
    images: list[ImageItem]
    usage: ImageUsage
