"""Use case: image generation. Check the request against the model's catalog entry, run it through the attempt
runner (retries, fallbacks, one usage record per attempt, priced per image by size and quality), keep every image
in the media store for the caller, and answer where to fetch each one.

A fallback model that cannot take the request as asked (more images than it draws, a size or quality it lacks) is
skipped rather than tried, so a fallback never fails on what the primary would have accepted.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Final

from attrs import frozen

from domain.catalog import ModelSpec
from domain.errors import ValidationError
from domain.images import GeneratedImage, ImageGeneration, ImageItem, ImageRequest, ImageResult, ImageUsage
from domain.media import MediaObject, media_path
from domain.metering import Units
from domain.pricing import cost_usd, image_unit_price
from domain.types import JsonValue
from ports.images import IMAGE_PORT, ImageProvider
from ports.media import MediaStore
from services.attempts import AttemptRunner, Caller, Candidates
from services.quotas import QuotaGate

__all__ = ["MAX_IMAGES", "MAX_PROMPT_CHARACTERS", "Generated", "ImageService", "request_problem"]

MAX_IMAGES: Final = 10
"""Most images per request for a model whose entry sets no ``max_images`` (OpenAI's own ceiling)."""
MAX_PROMPT_CHARACTERS: Final = 32_000
"""Longest prompt (OpenAI's limit for GPT image models, the most generous of the vendors)."""
MAX_INPUT_IMAGES: Final = 16
"""Most input images of an edit (OpenAI's limit)."""
_CAPABILITY: Final = "image"


@frozen
class Generated:
    """The answer, the ``meta`` saying who served it, and the images themselves (for in-process callers: the CLI)."""

    generation: ImageGeneration
    meta: dict[str, JsonValue]
    images: tuple[GeneratedImage, ...]


def request_problem(request: ImageRequest, spec: ModelSpec) -> ValidationError | None:
    """Why ``spec`` cannot serve ``request`` as asked (naming the field and what is allowed), or ``None``."""
    most = spec.max_images or MAX_IMAGES
    if not 1 <= request.n <= most:
        return ValidationError(
            "n",
            f"model {spec.qualified_id!r} draws 1 to {most} images per request, got {request.n}",
            context={"model": spec.qualified_id, "allowed": [1, most]},
        )
    for field, value, allowed in (
        ("size", request.size, spec.image_sizes),
        ("quality", request.quality, spec.image_qualities),
    ):
        # An entry that lists no values leaves the choice to the vendor (its adapter checks what it must).
        if value is not None and allowed and value not in allowed:
            return ValidationError(
                field,
                f"model {spec.qualified_id!r} takes {field} {', '.join(allowed)}; got {value!r}",
                context={"model": spec.qualified_id, "allowed": list(allowed)},
            )
    return None


class ImageService:
    """``generate``: the request's rules, the candidates fit for it, one runner call, the images stored."""

    def __init__(self, runner: AttemptRunner, media: MediaStore, *, quotas: QuotaGate | None = None) -> None:
        self.runner = runner
        self._media = media
        self._quotas = quotas or QuotaGate.unlimited()

    def plan(self, request: ImageRequest) -> Candidates:
        """The models to try for a valid ``request`` (a ``ValidationError`` naming the field otherwise; 404/422 from
        the registry for an unknown model or one without the ``image`` capability)."""
        if not request.model.strip():
            raise ValidationError("model", "must not be empty")
        if not request.prompt.strip():
            raise ValidationError("prompt", "must not be empty or blank")
        if len(request.prompt) > MAX_PROMPT_CHARACTERS:
            raise ValidationError(
                "prompt", f"at most {MAX_PROMPT_CHARACTERS} characters", context={"limit": MAX_PROMPT_CHARACTERS}
            )
        if len(request.input_images) > MAX_INPUT_IMAGES:
            raise ValidationError(
                "input_images", f"at most {MAX_INPUT_IMAGES} images", context={"limit": MAX_INPUT_IMAGES}
            )
        candidates = self.runner.candidates(request.model, capabilities=[_CAPABILITY], fallbacks=request.fallbacks)
        problem = request_problem(request, candidates.primary)
        if problem is not None:
            raise problem
        fit = tuple(spec for spec in candidates.models if request_problem(request, spec) is None)
        return Candidates(candidates.capability, fit)

    async def generate(self, request: ImageRequest, caller: Caller) -> Generated:
        """Draw the images with the first model that serves, store them for ``caller``, say where they are."""
        candidates = self.plan(request)

        async def invoke(provider: ImageProvider, spec: ModelSpec) -> ImageResult:
            return await provider.generate(request, spec)

        def price(units: Units, spec: ModelSpec) -> float | None:
            return cost_usd(units, spec, image_price=image_unit_price(spec, request.size, request.quality))

        # 403 a model the caller's key may not use, 429 over a limit: before any vendor call (issue 18).
        async with await self._quotas.admit(caller, candidates, lambda _: Units(images=request.n), price=price) as q:
            served = await self.runner.call(
                q.candidates, caller, IMAGE_PORT, invoke, units=lambda result: result.units, price=price
            )
        images = served.value.images
        stored = await asyncio.gather(
            *(self._media.put(caller.customer_id, image.data, image.mime_type, kind="image") for image in images)
        )
        items = [
            _item(image, kept, include_b64=request.include_b64) for image, kept in zip(images, stored, strict=True)
        ]
        usage = ImageUsage(
            images=served.units.images,
            cost_usd=served.cost_usd,
            input_tokens=served.units.input_tokens,
            output_tokens=served.units.output_tokens,
        )
        generation = ImageGeneration(model=served.model.qualified_id, images=items, usage=usage)
        return Generated(generation, served.meta(), images)


def _item(image: GeneratedImage, stored: MediaObject, *, include_b64: bool) -> ImageItem:
    return ImageItem(
        media_id=stored.id,
        url=media_path(stored.id),
        mime_type=image.mime_type,
        width=image.width,
        height=image.height,
        revised_prompt=image.revised_prompt,
        b64_json=base64.b64encode(image.data).decode("ascii") if include_b64 else None,
    )
