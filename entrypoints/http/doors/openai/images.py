"""HTTP boundary (OpenAI door): Images requests to the domain ``ImageRequest``, images back.

Every image is kept in the media store as on the native route; ``response_format: url`` (the default here, as for
DALL-E) answers the absolute URL of ``GET /api/v1/media/{id}`` (fetched with the same bearer token),
``b64_json`` the bytes inline.
"""

from __future__ import annotations

from domain.images import ImageGeneration, ImageRequest
from entrypoints.http.doors.openai.wire import OpenAIImage, OpenAIImageRequest, OpenAIImagesResponse

__all__ = ["image_request", "images_response"]


def image_request(body: OpenAIImageRequest) -> ImageRequest:
    """The domain request for an OpenAI image generation body."""
    return ImageRequest(
        model=body.model,
        prompt=body.prompt,
        n=1 if body.n is None else body.n,
        size=body.size,
        quality=body.quality,
        background=body.background,
        output_format=body.output_format,
        include_b64=body.response_format == "b64_json",
        fallbacks=tuple(body.fallbacks or ()),
        metadata=dict(body.metadata or {}),
    )


def images_response(
    generation: ImageGeneration, *, created: int, base_url: str, b64_json: bool
) -> OpenAIImagesResponse:
    """The images as OpenAI answers them: a URL each (``base_url`` + the media path), or base64 with ``b64_json``."""
    data = [
        OpenAIImage(b64_json=item.b64_json, revised_prompt=item.revised_prompt)
        if b64_json
        else OpenAIImage(url=base_url.rstrip("/") + item.url, revised_prompt=item.revised_prompt)
        for item in generation.images
    ]
    return OpenAIImagesResponse(created=created, data=data)
