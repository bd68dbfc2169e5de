"""Driven adapter (OpenAI): request options shared by both OpenAI APIs (catalog defaults, unsupported parameters)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from domain.catalog import ModelSpec
from domain.chat import ContentPart
from domain.errors import ValidationError

__all__ = ["base_options", "image_url", "split_known", "text_of"]

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


def split_known(create: Callable[..., Any], params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as keyword arguments of ``create``: what its signature lacks (a vendor-specific catalog default such
    as a compatible server's extension) travels in ``extra_body`` so it still reaches the wire."""
    method = getattr(create, "__func__", None)  # an SDK resource's bound ``create``: a new object at every access
    known = _parameter_names(create, bound=False) if method is None else _parameter_names(method, bound=True)
    kwargs = {k: v for k, v in params.items() if k in known}
    extra = {k: v for k, v in params.items() if k not in known}
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


@lru_cache(maxsize=64)
def _parameter_names(function: Callable[..., Any], *, bound: bool) -> frozenset[str]:
    """A callable's parameter names (after ``self`` for a method's function), once per function: the signature of
    an SDK ``create`` takes ~50 µs to build, and the answer never changes."""
    names = list(inspect.signature(function).parameters)
    return frozenset(names[1:] if bound else names)
