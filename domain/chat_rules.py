"""Domain: chat rules against one catalog entry: what a chat request needs of a model, and adapting the request to
the model (dropping what it rejects, filling its defaults, capping ``max_tokens``)."""

from __future__ import annotations

from typing import Any, Final

import attrs
from attrs import frozen

from domain.catalog import ModelSpec
from domain.chat import ChatRequest, ContentPart

__all__ = ["ADJUSTABLE_PARAMS", "PreparedRequest", "prepare_request", "required_capabilities"]

# Request fields a catalog entry may reject (``unsupported_params``) or default (``default_params``).
ADJUSTABLE_PARAMS: Final = frozenset({"temperature", "top_p", "max_tokens", "stop", "tool_choice"})
_EMPTY: Final[dict[str, Any]] = {
    "temperature": None,
    "top_p": None,
    "max_tokens": None,
    "stop": [],
    "tool_choice": None,
}


def _has_image(content: str | list[ContentPart]) -> bool:
    return not isinstance(content, str) and any(part.type == "image" for part in content)


def required_capabilities(request: ChatRequest) -> list[str]:
    """What ``request`` needs from a model: ``text`` always, then ``vision``, ``tools``, ``structured_output``."""
    needed = ["text"]
    if any(_has_image(m.content) for m in request.messages):
        needed.append("vision")
    if request.tools:
        needed.append("tools")
    if request.response_format is not None and request.response_format.type != "text":
        needed.append("structured_output")
    return needed


@frozen
class PreparedRequest:
    """A request adapted to one catalog entry, and the parameters that were dropped on the way."""

    request: ChatRequest
    dropped: tuple[str, ...] = ()


def prepare_request(request: ChatRequest, spec: ModelSpec) -> PreparedRequest:
    """Drop what ``spec`` rejects, fill its defaults where the caller set nothing, cap ``max_tokens``."""
    changes: dict[str, Any] = {}
    dropped: list[str] = []
    for param in sorted(spec.unsupported_params & ADJUSTABLE_PARAMS):
        if getattr(request, param) != _EMPTY[param]:
            changes[param] = _EMPTY[param]
            dropped.append(param)
    for param, value in spec.default_params.items():
        settable = param in ("temperature", "top_p", "max_tokens") and param not in spec.unsupported_params
        if settable and getattr(request, param) is None and param not in changes:
            changes[param] = value
    max_tokens = changes.get("max_tokens", request.max_tokens)
    if max_tokens is not None and spec.max_output_tokens is not None and max_tokens > spec.max_output_tokens:
        changes["max_tokens"] = spec.max_output_tokens
    return PreparedRequest(attrs.evolve(request, **changes) if changes else request, tuple(dropped))
