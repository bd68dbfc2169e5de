"""Driven adapter: OpenAI Images API (``images.generate`` / ``images.edit``) implementation of the ``ImageProvider``
port.

Two families behave differently on the wire. GPT image models (``gpt-image-*``, ``chatgpt-image-*``) always answer
base64, reject ``response_format``, and take ``background`` and ``output_format``; they report token usage and the
size they drew. DALL-E models (``dall-e-*``) answer a URL unless asked for ``b64_json``, rewrite the prompt
(``revised_prompt``), draw PNG only and cannot edit. A policy refusal is a 400 whose code is
``content_policy_violation`` (DALL-E) or ``moderation_blocked`` (GPT image): a ``ContentPolicyError`` with the
vendor's scrubbed reason. One attempt per call; the SDK client is shared with the vendor's other providers.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

import openai
from openai import AsyncOpenAI
from openai.types import ImagesResponse

from adapters.openai.errors import TRANSPORT_ERRORS, map_openai_error
from domain.catalog import ModelSpec
from domain.errors import ContentPolicyError, ProviderError, ServiceError, ValidationError
from domain.images import GeneratedImage, ImageRequest, ImageResult, mime_type_of, parse_size, png_size
from domain.metering import Units

__all__ = ["POLICY_CODES", "OpenAIImageProvider", "is_dall_e"]

#: The ``error.code`` values of a content-policy refusal (DALL-E, GPT image models).
POLICY_CODES: Final = frozenset(("content_policy_violation", "moderation_blocked"))
_VENDOR_FAILURES: Final[tuple[type[Exception], ...]] = (openai.OpenAIError, *TRANSPORT_ERRORS)


def is_dall_e(model: ModelSpec) -> bool:
    """Whether ``model`` is of the DALL-E family (its wire rules differ from the GPT image models')."""
    return model.wire_name.startswith("dall-e")


def _unsupported(field: str, model: ModelSpec, what: str) -> ValidationError:
    return ValidationError(field, f"{model.qualified_id} {what}", context={"model": model.qualified_id})


def _params(request: ImageRequest, model: ModelSpec) -> dict[str, Any]:
    """The keyword arguments both ``generate`` and ``edit`` take, checked against what the family accepts."""
    if request.seed is not None:
        raise _unsupported("seed", model, "takes no seed")
    if request.negative_prompt is not None:
        raise _unsupported("negative_prompt", model, "takes no negative prompt")
    params: dict[str, Any] = {"model": model.wire_name, "prompt": request.prompt, "n": request.n}
    if request.size is not None:
        params["size"] = request.size
    if request.quality is not None:
        params["quality"] = request.quality
    if is_dall_e(model):
        if request.background is not None:
            raise _unsupported("background", model, "takes no background")
        if request.output_format not in (None, "png"):
            raise _unsupported("output_format", model, "draws PNG only")
        if request.input_images:
            raise _unsupported("input_images", model, "cannot edit images")
        params["response_format"] = "b64_json"  # else a URL that expires and that we would have to fetch
        return params
    if request.background is not None:
        params["background"] = request.background
    if request.output_format is not None:
        params["output_format"] = request.output_format
    return params


def _files(request: ImageRequest) -> Any:
    """The ``image`` multipart field: ``(filename, bytes, mime type)`` tuples (a list sends ``image[]``)."""
    files = [
        (f"input-{index}.{image.mime_type.rpartition('/')[2] or 'png'}", image.data, image.mime_type)
        for index, image in enumerate(request.input_images)
    ]
    return files[0] if len(files) == 1 else files


def _decode(provider: str, b64: str) -> bytes:
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProviderError(provider, f"{provider} returned an image that is not base64", original_error=exc) from None


def _result(provider: str, response: ImagesResponse, request: ImageRequest) -> ImageResult:
    output_format = response.output_format if response.output_format in ("png", "jpeg", "webp") else None
    mime_type = mime_type_of(output_format or request.output_format)
    # GPT image models say what they drew (``auto`` resolved); DALL-E draws exactly the size asked for.
    dimensions = parse_size(response.size or request.size or "")
    images = []
    for item in response.data or ():
        if not item.b64_json:
            raise ProviderError(provider, f"{provider} returned an image without base64 data")
        data = _decode(provider, item.b64_json)
        width, height = dimensions or png_size(data) or (None, None)
        images.append(GeneratedImage(data, mime_type, width, height, item.revised_prompt))
    if not images:
        raise ProviderError(provider, f"{provider} returned no images")
    usage = response.usage
    units = Units(
        images=len(images),
        input_tokens=usage.input_tokens if usage is not None else 0,
        output_tokens=usage.output_tokens if usage is not None else 0,
    )
    return ImageResult(tuple(images), units)


def _mapped(provider: str, exc: BaseException) -> ServiceError:
    error = map_openai_error(provider, exc)
    if isinstance(error, ValidationError) and error.context.get("vendor_code") in POLICY_CODES:
        return ContentPolicyError(provider, error.reason)
    return error


class OpenAIImageProvider:
    """``ImageProvider`` over the vendor's shared ``AsyncOpenAI`` client (not closed here: the bundle closes it)."""

    def __init__(self, client: AsyncOpenAI, *, name: str = "openai") -> None:
        self._client = client
        self._name = name

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def generate(self, request: ImageRequest, model: ModelSpec) -> ImageResult:
        """One call: ``images.edit`` when the request carries input images, else ``images.generate``."""
        params = _params(request, model)
        try:
            if request.input_images:
                response = await self._client.images.edit(image=_files(request), **params)
            else:
                response = await self._client.images.generate(**params)
        except _VENDOR_FAILURES as exc:
            raise _mapped(self._name, exc) from exc
        return _result(self._name, response, request)
