"""Test double (vendor emulator): image generation's wire formats as pure functions (checks and answer bodies).

What each vendor accepts (OpenAI's GPT image and DALL-E 3 families, Imagen's ``:predict``, Gemini image output) and
what it answers, with the dimensions each documents per size or aspect ratio; ``images.py`` serves them. A request
the vendor would reject raises ``Refused`` with the vendor's wording.
"""

from __future__ import annotations

import base64
import hashlib
import io
import time
from collections.abc import Mapping
from typing import Any, Final

from PIL import Image

__all__ = [
    "DALL_E_KEYS",
    "EDIT_KEYS",
    "GEMINI_POLICY_MESSAGE",
    "GEMINI_RATIOS",
    "GPT_IMAGE_KEYS",
    "IMAGEN_DIMENSIONS",
    "IMAGEN_POLICY_REASON",
    "POLICY_MESSAGE",
    "Refused",
    "b64",
    "check_openai",
    "check_predict",
    "draw",
    "gemini_prompt",
    "openai_images",
]

POLICY_MESSAGE: Final = (
    "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed."
)
IMAGEN_POLICY_REASON: Final = "Your current safety filter threshold filtered out the generated images."
GEMINI_POLICY_MESSAGE: Final = "Unable to show the generated image: it may violate the usage guidelines."

# OpenAI: what each family accepts (the public API reference).
_GPT_IMAGE: Final[Mapping[str, frozenset[str]]] = {
    "size": frozenset(("1024x1024", "1536x1024", "1024x1536", "auto")),
    "quality": frozenset(("low", "medium", "high", "auto")),
    "background": frozenset(("transparent", "opaque", "auto")),
    "output_format": frozenset(("png", "jpeg", "webp")),
    "moderation": frozenset(("low", "auto")),
}
_DALL_E_3: Final[Mapping[str, frozenset[str]]] = {
    "size": frozenset(("1024x1024", "1792x1024", "1024x1792")),
    "quality": frozenset(("standard", "hd")),
    "response_format": frozenset(("url", "b64_json")),
    "style": frozenset(("vivid", "natural")),
}
_COMMON_KEYS: Final = frozenset(("model", "prompt", "n", "size", "quality", "user", "stream"))
GPT_IMAGE_KEYS: Final = _COMMON_KEYS | {"background", "output_format", "output_compression", "moderation"}
DALL_E_KEYS: Final = _COMMON_KEYS | {"response_format", "style"}
EDIT_KEYS: Final = frozenset(("model", "prompt", "n", "size", "quality", "background", "output_format", "user"))

#: Imagen: (aspectRatio, sampleImageSize) -> the dimensions it draws.
IMAGEN_DIMENSIONS: Final[Mapping[tuple[str, str], tuple[int, int]]] = {
    ("1:1", "1K"): (1024, 1024),
    ("3:4", "1K"): (896, 1280),
    ("4:3", "1K"): (1280, 896),
    ("9:16", "1K"): (768, 1408),
    ("16:9", "1K"): (1408, 768),
    ("1:1", "2K"): (2048, 2048),
    ("3:4", "2K"): (1792, 2560),
    ("4:3", "2K"): (2560, 1792),
    ("9:16", "2K"): (1536, 2816),
    ("16:9", "2K"): (2816, 1536),
}
_IMAGEN_PARAMETERS: Final = frozenset(
    (
        "sampleCount",
        "aspectRatio",
        "sampleImageSize",
        "negativePrompt",
        "seed",
        "addWatermark",
        "includeRaiReason",
        "includeSafetyAttributes",
        "outputOptions",
        "personGeneration",
        "safetySetting",
        "enhancePrompt",
        "guidanceScale",
        "language",
    )
)
#: Gemini image models: imageConfig.aspectRatio -> the dimensions they draw.
GEMINI_RATIOS: Final[Mapping[str, tuple[int, int]]] = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}
_PIL: Final = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


class Refused(Exception):
    """A request the vendor rejects (400 with its message)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def draw(prompt: str, index: int, size: tuple[int, int], output_format: str = "png", *, alpha: bool = False) -> bytes:
    """A real image: one colour from the prompt's hash (a corner marks the index), encoded as asked."""
    digest = hashlib.sha256(f"{index}:{prompt}".encode()).digest()
    mode = "RGBA" if alpha and output_format != "jpeg" else "RGB"
    colour = tuple(digest[:4]) if mode == "RGBA" else tuple(digest[:3])
    picture = Image.new(mode, size, colour)
    picture.putpixel((0, 0), (index * 40 % 256,) * len(mode))
    buffer = io.BytesIO()
    picture.save(buffer, format=_PIL[output_format])
    return buffer.getvalue()


def b64(data: bytes) -> str:
    """Base64 text of ``data``."""
    return base64.b64encode(data).decode()


def _int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, str) and value.isdigit():  # multipart sends numbers as text
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Refused(f"Invalid '{name}': expected an integer between {low} and {high}, got {value!r}.", name)
    return value


def _one_of(fields: Mapping[str, Any], allowed: Mapping[str, frozenset[str]], model: str) -> None:
    for name, values in allowed.items():
        if name in fields and fields[name] not in values:
            raise Refused(
                f"Invalid value for '{name}' with model {model}: {fields[name]!r}. "
                f"Supported values are: {', '.join(sorted(values))}.",
                name,
            )


def check_openai(fields: Mapping[str, Any], keys: frozenset[str]) -> tuple[str, int]:
    """(model, n) of a valid OpenAI image request; raises ``Refused`` with the vendor's wording otherwise."""
    unknown = sorted(set(fields) - keys)
    if unknown:
        raise Refused(f"Unknown parameter: '{unknown[0]}'.", unknown[0])
    model = fields.get("model")
    if not isinstance(model, str) or not model:
        raise Refused("Missing required parameter: 'model'.", "model")
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise Refused("Missing required parameter: 'prompt'.", "prompt")
    n = _int(fields.get("n", 1), "n", 1, 10)
    if model.startswith("dall-e-3"):
        _one_of(fields, _DALL_E_3, model)
        if n != 1:
            raise Refused("Invalid 'n': dall-e-3 supports only n=1.", "n")
    else:
        _one_of(fields, _GPT_IMAGE, model)
        if fields.get("background") == "transparent" and fields.get("output_format") == "jpeg":
            raise Refused("Transparent background requires output_format png or webp.", "background")
    return model, n


def openai_images(fields: Mapping[str, Any], model: str, n: int) -> dict[str, Any]:
    prompt = str(fields["prompt"])
    size = str(fields.get("size") or ("1024x1024" if model.startswith("dall-e") else "auto"))
    width, _, height = (size if size != "auto" else "1024x1024").partition("x")
    dimensions = (int(width), int(height))
    if model.startswith("dall-e"):
        data = []
        for index in range(n):
            image = draw(prompt, index, dimensions)
            revised = f"A detailed, vivid rendering of {prompt}"
            if fields.get("response_format") == "b64_json":
                data.append({"b64_json": b64(image), "revised_prompt": revised})
            else:
                data.append({"url": f"https://images.emulator.invalid/{index}.png", "revised_prompt": revised})
        return {"created": int(time.time()), "data": data}
    output_format = str(fields.get("output_format") or "png")
    alpha = fields.get("background") == "transparent"
    images = [draw(prompt, i, dimensions, output_format, alpha=alpha) for i in range(n)]
    return {
        "created": int(time.time()),
        "data": [{"b64_json": b64(image)} for image in images],
        "background": "transparent" if alpha else "opaque",
        "output_format": output_format,
        "quality": fields.get("quality") if fields.get("quality") not in (None, "auto") else "medium",
        "size": f"{dimensions[0]}x{dimensions[1]}",
        "usage": {
            "input_tokens": 12,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": 12},
            "output_tokens": 1056 * n,
            "total_tokens": 12 + 1056 * n,
        },
    }


def check_predict(body: Mapping[str, Any]) -> tuple[str, int, tuple[int, int], str]:
    """(prompt, sampleCount, dimensions, MIME type) of a valid Imagen ``:predict`` body."""
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        raise Refused("instances must hold exactly one instance.")
    prompt = instances[0].get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise Refused("instances[0].prompt is required.")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise Refused("parameters must be an object.")
    unknown = sorted(set(parameters) - _IMAGEN_PARAMETERS)
    if unknown:
        raise Refused(f"Invalid JSON payload received. Unknown name \"{unknown[0]}\" at 'parameters'.")
    count = _int(parameters.get("sampleCount", 4), "sampleCount", 1, 4)
    key = (str(parameters.get("aspectRatio", "1:1")), str(parameters.get("sampleImageSize", "1K")))
    if key not in IMAGEN_DIMENSIONS:
        raise Refused(f"Unsupported aspect ratio or image size: {key[0]} at {key[1]}.")
    if parameters.get("seed") is not None and parameters.get("addWatermark", True):
        raise Refused("Seed is not supported when watermark is enabled.")
    mime = str((parameters.get("outputOptions") or {}).get("mimeType", "image/png"))
    if mime not in ("image/png", "image/jpeg"):
        raise Refused(f"Unsupported output mime type: {mime}.")
    return prompt, count, IMAGEN_DIMENSIONS[key], mime


def gemini_prompt(body: Mapping[str, Any]) -> str:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise Refused("contents is not specified")
    parts = contents[-1].get("parts") if isinstance(contents[-1], dict) else None
    texts = [p["text"] for p in parts or () if isinstance(p, dict) and isinstance(p.get("text"), str)]
    if not texts:
        raise Refused("the last content has no text part")
    for part in parts or ():
        blob = part.get("inlineData") if isinstance(part, dict) else None
        # The API parses proto3 JSON, which takes a field's lowerCamel and original names alike; google-genai sends
        # ``mime_type`` inside ``inlineData``.
        mime = (blob.get("mimeType") or blob.get("mime_type")) if isinstance(blob, dict) else None
        if blob is not None and not (isinstance(blob, dict) and blob.get("data") and mime):
            raise Refused("inlineData needs data and mimeType")
    return " ".join(texts)
