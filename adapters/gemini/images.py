"""Driven adapter: Google image generation (google-genai ``client.aio``) implementation of the ``ImageProvider`` port.

Two APIs, chosen by the catalog entry's ``api``:

- ``api = "imagen"``: Imagen through ``models.generate_images`` (``:predict``). google-genai 3.x serves it only in
  Vertex AI mode (a client made with ``vertexai=True``; an API key alone is "express mode") and marks it deprecated;
  the provider uses ``imagen_client`` when given (a Vertex client beside the vendor's shared one), else the shared
  client if it is in Vertex mode; otherwise the call is refused here, before any request, as a non-retryable
  ``ProviderError`` so a fallback can serve. Imagen draws 1-4 images per call, rewrites the prompt when its enhancer
  is on (``revised_prompt``) and reports what it filtered in ``raiFilteredReason``.
- otherwise: the Gemini image models through ``models.generate_content`` with image output (``inlineData`` parts).
  They draw one image per call, so ``n`` images are ``n`` concurrent calls (seed ``+ index`` when a seed is given);
  input images are sent as parts, which makes the call an edit.

Sizes are ``"<w>x<h>"`` for every vendor; these models speak in aspect ratios (and Imagen in ``1K``/``2K``), so the
tables below hold the dimensions each vendor documents for each ratio. A prompt or image blocked on safety grounds
(prompt feedback, a safety finish reason, every Imagen image filtered) is a ``ContentPolicyError`` with the vendor's
scrubbed reason. The SDK client is shared with the vendor's other providers and closed by the bundle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import Any, Final, TypeVar

import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from adapters.gemini.errors import map_gemini_error, safe_reason
from adapters.gemini.vertex import AUTH_FAILURES, vertex_auth_error
from domain.catalog import ModelSpec
from domain.errors import ContentPolicyError, ProviderError, ValidationError
from domain.images import GeneratedImage, ImageRequest, ImageResult, parse_size, png_size
from domain.metering import Units

__all__ = ["GEMINI_IMAGE_SIZES", "IMAGEN_SIZES", "GeminiImageProvider"]

T = TypeVar("T")

#: Imagen: size -> (aspectRatio, sampleImageSize).
IMAGEN_SIZES: Final[Mapping[str, tuple[str, str]]] = {
    "1024x1024": ("1:1", "1K"),
    "896x1280": ("3:4", "1K"),
    "1280x896": ("4:3", "1K"),
    "768x1408": ("9:16", "1K"),
    "1408x768": ("16:9", "1K"),
    "2048x2048": ("1:1", "2K"),
    "1792x2560": ("3:4", "2K"),
    "2560x1792": ("4:3", "2K"),
    "1536x2816": ("9:16", "2K"),
    "2816x1536": ("16:9", "2K"),
}
#: Gemini image models (``imageConfig.aspectRatio``): size -> aspect ratio.
GEMINI_IMAGE_SIZES: Final[Mapping[str, str]] = {
    "1024x1024": "1:1",
    "832x1248": "2:3",
    "1248x832": "3:2",
    "864x1184": "3:4",
    "1184x864": "4:3",
    "896x1152": "4:5",
    "1152x896": "5:4",
    "768x1344": "9:16",
    "1344x768": "16:9",
    "1536x672": "21:9",
}
_IMAGEN_FORMATS: Final = {"png": "image/png", "jpeg": "image/jpeg"}
#: Finish reasons that mean "refused on safety or policy grounds" rather than "failed".
_POLICY_FINISH: Final = frozenset(
    (
        "SAFETY",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "RECITATION",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    )
)
#: What may escape the SDK during a call: its own errors, transport errors it leaves unwrapped, a body that is not
#: the JSON its models expect.
_VENDOR_FAILURES: Final[tuple[type[Exception], ...]] = (
    genai_errors.APIError,
    httpx2.HTTPError,
    TimeoutError,
    ValueError,
)


def _unsupported(field: str, model: ModelSpec, what: str) -> ValidationError:
    return ValidationError(field, f"{model.qualified_id} {what}", context={"model": model.qualified_id})


def _size(field_value: str | None, table: Mapping[str, Any], model: ModelSpec) -> Any:
    if field_value is None:
        return None
    if field_value not in table:
        raise ValidationError(
            "size", f"{model.qualified_id} draws only {', '.join(table)}", context={"allowed": list(table)}
        )
    return table[field_value]


def _name(value: object) -> str:
    return str(getattr(value, "value", value))


class GeminiImageProvider:
    """``ImageProvider`` over the vendor's shared ``genai.Client`` (its ``aio`` side)."""

    def __init__(
        self, client: genai.Client, *, name: str = "gemini", imagen_client: genai.Client | None = None
    ) -> None:
        self._client = client
        self._name = name
        # Imagen needs Vertex AI mode; a vendor whose shared client speaks the Gemini API may hand a second one.
        self._imagen_client = imagen_client or client

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def generate(self, request: ImageRequest, model: ModelSpec) -> ImageResult:
        """One attempt through the API the catalog chose for ``model``."""
        if request.quality is not None:
            raise _unsupported("quality", model, "takes no quality")
        if request.background is not None:
            raise _unsupported("background", model, "takes no background")
        if model.api == "imagen":
            return await self._imagen(request, model)
        return await self._content(request, model)

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except _VENDOR_FAILURES as exc:
            raise map_gemini_error(self._name, exc) from exc
        except AUTH_FAILURES as exc:  # a Vertex project's credentials (loaded by the SDK on its first call)
            raise vertex_auth_error(self._name, exc) from exc

    # --- Imagen (:predict) ---------------------------------------------------------------------------------------

    async def _imagen(self, request: ImageRequest, model: ModelSpec) -> ImageResult:
        if request.input_images:
            raise _unsupported("input_images", model, "cannot edit images; use a Gemini image model")
        if request.output_format is not None and request.output_format not in _IMAGEN_FORMATS:
            raise _unsupported("output_format", model, f"draws only {', '.join(_IMAGEN_FORMATS)}")
        if not self._imagen_client.vertexai:
            raise ProviderError(
                self._name,
                f"{model.qualified_id} needs a Vertex AI client: google-genai serves Imagen only in Vertex AI mode",
                context={"model": model.qualified_id},
            )
        ratio, image_size = _size(request.size, IMAGEN_SIZES, model) or (None, None)
        config = types.GenerateImagesConfig(
            number_of_images=request.n,
            aspect_ratio=ratio,
            image_size=image_size,
            output_mime_type=_IMAGEN_FORMATS[request.output_format] if request.output_format else None,
            negative_prompt=request.negative_prompt,
            seed=request.seed,
            # Imagen refuses a seed while it watermarks (the watermark is the default), so a seed turns it off.
            add_watermark=False if request.seed is not None else None,
            include_rai_reason=True,  # otherwise a filtered image simply goes missing, without a reason
        )
        response = await self._call(
            self._imagen_client.aio.models.generate_images(model=model.wire_name, prompt=request.prompt, config=config)
        )
        return self._imagen_result(response, request)

    def _imagen_result(self, response: types.GenerateImagesResponse, request: ImageRequest) -> ImageResult:
        images: list[GeneratedImage] = []
        filtered: list[str] = []
        for generated in response.generated_images or ():
            picture = generated.image
            if picture is None or not picture.image_bytes:
                filtered.append(generated.rai_filtered_reason or "")
                continue
            data = picture.image_bytes
            width, height = _dimensions(data, request.size)
            mime_type = picture.mime_type or "image/png"
            images.append(GeneratedImage(data, mime_type, width, height, generated.enhanced_prompt))
        if not images:
            reason = next((r for r in filtered if r), "the vendor filtered every image it drew")
            raise ContentPolicyError(self._name, safe_reason(reason))
        return ImageResult(tuple(images), Units(images=len(images)))

    # --- Gemini image models (:generateContent with image output) --------------------------------------------------

    async def _content(self, request: ImageRequest, model: ModelSpec) -> ImageResult:
        if request.negative_prompt is not None:
            raise _unsupported("negative_prompt", model, "takes no negative prompt")
        if request.output_format not in (None, "png"):
            raise _unsupported("output_format", model, "draws PNG only")
        ratio = _size(request.size, GEMINI_IMAGE_SIZES, model)
        parts = [types.Part(text=request.prompt)]
        parts += [types.Part.from_bytes(data=i.data, mime_type=i.mime_type) for i in request.input_images]
        contents = [types.Content(role="user", parts=parts)]
        calls = [
            asyncio.ensure_future(self._one_content(model, contents, ratio, request, index))
            for index in range(request.n)
        ]
        try:
            results = await asyncio.gather(*calls)
        except BaseException:
            for call in calls:  # one failed: the attempt is over, stop paying for the others
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
            raise
        units = Units()
        for _, used in results:
            units += used
        return ImageResult(tuple(image for image, _ in results), units)

    async def _one_content(
        self, model: ModelSpec, contents: list[types.Content], ratio: str | None, request: ImageRequest, index: int
    ) -> tuple[GeneratedImage, Units]:
        config = types.GenerateContentConfig(
            response_modalities=["IMAGE"],
            image_config=types.ImageConfig(aspect_ratio=ratio) if ratio else None,
            seed=request.seed + index if request.seed is not None else None,
        )
        response = await self._call(
            self._client.aio.models.generate_content(model=model.wire_name, contents=contents, config=config)
        )
        image = self._content_image(response, request)
        usage = response.usage_metadata
        units = Units(
            images=1,
            input_tokens=(usage.prompt_token_count or 0) if usage else 0,
            output_tokens=(usage.candidates_token_count or 0) if usage else 0,
        )
        return image, units

    def _content_image(self, response: types.GenerateContentResponse, request: ImageRequest) -> GeneratedImage:
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            reason = feedback.block_reason_message or f"the prompt was blocked ({_name(feedback.block_reason)})"
            raise ContentPolicyError(self._name, safe_reason(reason))
        candidate = response.candidates[0] if response.candidates else None
        content = candidate.content if candidate is not None else None
        for part in (content.parts if content is not None else None) or ():
            blob = part.inline_data
            if blob is not None and blob.data and (blob.mime_type or "").startswith("image/"):
                width, height = _dimensions(blob.data, request.size)
                return GeneratedImage(blob.data, blob.mime_type or "image/png", width, height)
        finish = _name(candidate.finish_reason) if candidate is not None and candidate.finish_reason else "none"
        if finish in _POLICY_FINISH:
            message = candidate.finish_message if candidate is not None else None
            raise ContentPolicyError(self._name, safe_reason(message or f"the image was blocked ({finish})"))
        raise ProviderError(
            self._name, f"{self._name} answered without an image (finish reason {finish})", context={"finish": finish}
        )


def _dimensions(data: bytes, size: str | None) -> tuple[int | None, int | None]:
    """What the image header says (PNG), else the size asked for, else the vendor's default (1:1 at 1K)."""
    return png_size(data) or parse_size(size or "1024x1024") or (None, None)
