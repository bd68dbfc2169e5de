"""Blueprint: ``POST /api/v1/images/generations``, images drawn by a model and kept in the media store for the caller.

The body is ``ImageGenerationBody``, structured strictly by the HTTP converter (a misspelt field is a 422 naming
it). Input images of an edit arrive base64-encoded and are decoded here, at the edge: the core only sees bytes. The
service checks the rules that depend on the model (``n``, ``size``, ``quality``: a 422 naming the allowed values).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

from attrs import field, frozen
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response, current_app, g

from domain.errors import ValidationError
from domain.images import ImageGeneration, ImageRequest, InputImage, OutputFormat
from entrypoints.http.auth import current_auth
from entrypoints.http.envelope import api_ok
from entrypoints.http.openapi import documented
from entrypoints.http.serialization import json_response, read_body
from services.attempts import Caller
from services.images import ImageService

__all__ = ["ImageGenerationBody", "InputImageBody", "blueprint", "image_request"]

blueprint = Blueprint("images", __name__)
_ERRORS: Final = (400, 401, 404, 413, 415, 422, 429, 502, 503, 504)
_INPUT_TYPES: Final = ("image/png", "image/jpeg", "image/webp")


@frozen
class InputImageBody:
    """An image to edit: its bytes in base64 and its MIME type (PNG, JPEG or WebP)."""

    b64_json: str
    mime_type: str = "image/png"


@frozen
class ImageGenerationBody:
    """What to draw. ``size`` is ``"<width>x<height>"`` (or ``"auto"``) and ``quality`` one the model takes (a value
    it lacks is a 422 listing the allowed ones); ``None`` leaves the choice to the model. ``input_images`` make the
    request an edit; ``include_b64`` adds each image's bytes inline besides its URL; ``fallbacks`` are models tried
    in order when this one fails; ``metadata`` is passed to the provider (the fake's ``fake_*`` switches)."""

    model: str
    prompt: str
    n: int = 1
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: OutputFormat | None = None
    input_images: list[InputImageBody] = field(factory=list)
    seed: int | None = None
    negative_prompt: str | None = None
    include_b64: bool = False
    fallbacks: list[str] = field(factory=list)
    metadata: dict[str, str] = field(factory=dict)


def _decoded(index: int, image: InputImageBody) -> InputImage:
    if image.mime_type not in _INPUT_TYPES:
        raise ValidationError(f"input_images[{index}].mime_type", f"expected one of {', '.join(_INPUT_TYPES)}")
    try:
        data = base64.b64decode(image.b64_json, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"input_images[{index}].b64_json", "is not valid base64") from None
    if not data:
        raise ValidationError(f"input_images[{index}].b64_json", "must not be empty")
    return InputImage(data, image.mime_type)


def image_request(body: ImageGenerationBody) -> ImageRequest:
    """The domain request for a structured body (input images decoded)."""
    return ImageRequest(
        model=body.model,
        prompt=body.prompt,
        n=body.n,
        size=body.size,
        quality=body.quality,
        background=body.background,
        output_format=body.output_format,
        input_images=tuple(_decoded(i, image) for i, image in enumerate(body.input_images)),
        seed=body.seed,
        negative_prompt=body.negative_prompt,
        include_b64=body.include_b64,
        fallbacks=tuple(body.fallbacks),
        metadata=dict(body.metadata),
    )


def _max_body() -> int:
    limit: Any = current_app.config.get("MAX_CONTENT_LENGTH")
    return int(limit or 1024 * 1024)


@blueprint.post("/api/v1/images/generations")
@inject
@documented(
    "Generate (or, with input_images, edit) images; each is kept for the caller and fetched from its url",
    request=ImageGenerationBody,
    response=ImageGeneration,
    tags=["images"],
    errors=_ERRORS,
    description=(
        "`data.images[]` holds `{media_id, url, mime_type, width, height, revised_prompt, b64_json}` per image; "
        "`url` is `GET /api/v1/media/{media_id}` (same bearer token, until the media expire) and `b64_json` is set "
        "only with `include_b64: true`. `data.usage` counts the images and their cost (priced by size and quality). "
        "A model without the `image` capability, or an `n`, `size` or `quality` the model does not take, is a 422 "
        "naming the field and the allowed values; a refusal under the vendor's content policy is a 422 "
        "`content_policy` with the vendor's reason. `meta.extra` says which model and provider served, the retries "
        "and the fallback used."
    ),
)
async def generate_images(service: ImageService = Provide["image_service"]) -> Response:
    body = await read_body(ImageGenerationBody, max_bytes=_max_body())
    caller = Caller(current_auth().customer_id, str(getattr(g, "request_id", "") or ""))
    result = await service.generate(image_request(body), caller)
    return json_response(api_ok(result.generation, extra=result.meta))
