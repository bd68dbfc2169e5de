"""Driven adapter (OpenAI): request options shared by both OpenAI APIs (catalog defaults, unsupported parameters)."""

from __future__ import annotations

from typing import Any

from domain.catalog import ModelSpec
from domain.chat import ContentPart
from domain.errors import ValidationError

__all__ = ["base_options", "image_url", "text_of"]

#: Wire names that are the same knob as a ``ChatRequest`` field, so ``unsupported_params`` may name either.
_ALIASES = {"max_completion_tokens": "max_tokens", "max_output_tokens": "max_tokens", "text": "response_format"}


def base_options(options: dict[str, Any], model: ModelSpec) -> dict[str, Any]:
    """``options`` without unset values and without what the model rejects, over the catalog's default params."""
    unsupported = model.unsupported_params
    merged = {k: v for k, v in model.default_params.items() if k not in unsupported}
    for key, value in options.items():
        if value is None or key in unsupported or _ALIASES.get(key) in unsupported:
            continue
        merged[key] = value
    return merged


def text_of(content: str | list[ContentPart]) -> str:
    """The text of a message (its text parts joined); images are dropped where only text is accepted."""
    if isinstance(content, str):
        return content
    return "".join(part.text or "" for part in content if part.type == "text")


def image_url(part: ContentPart) -> str:
    """An image part's URL (OpenAI takes http(s) and data: URLs alike)."""
    if not part.image_url:
        raise ValidationError("messages.content.image_url", "an image part needs an image_url")
    return part.image_url
