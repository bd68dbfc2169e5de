"""Driven port: a vendor that turns an image request into images."""

from __future__ import annotations

from typing import Final, Protocol

from domain.catalog import ModelSpec
from domain.images import ImageRequest, ImageResult
from ports.providers import PortKey

__all__ = ["IMAGE_PORT", "ImageProvider"]


class ImageProvider(Protocol):
    """One vendor's image generation: one attempt per call (retries and fallbacks belong to the attempt runner);
    raises domain errors (``ContentPolicyError`` for a refusal, ``RateLimitError``, ``ProviderError`` ...), never a
    vendor exception."""

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        ...

    async def generate(self, request: ImageRequest, model: ModelSpec) -> ImageResult:
        """Generate (or, with ``input_images``, edit) ``request.n`` images with ``model``."""
        ...


IMAGE_PORT: Final = PortKey[ImageProvider]("image")
