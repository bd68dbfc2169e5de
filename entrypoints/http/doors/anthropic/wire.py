"""HTTP boundary, Anthropic door: the Messages API's JSON shapes as attrs classes, and the door's own converter.

Requests are read as Anthropic's SDKs write them. Unknown keys (``thinking``, ``cache_control``, ``service_tier`` and
whatever the next SDK adds) are ignored, as the issue asks of every front door; a known key of the wrong type is a
``RequestValidationError`` naming it. Content blocks are one flat class discriminated by ``type`` (msgspec cannot
document a union of attrs classes, and the OpenAPI document is built from these very classes); the translator checks
what each block type requires. Response blocks unstructure without their ``None`` fields, so a ``text`` block carries
``type`` and ``text`` only, as Anthropic's do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from types import GenericAlias
from typing import Any, Final, Literal, TypeVar, get_args, get_origin

import cattrs
from attrs import frozen
from cattrs.cols import list_structure_factory
from cattrs.errors import BaseValidationError
from cattrs.gen import make_dict_unstructure_fn

from domain.errors import FieldError, RequestValidationError
from entrypoints.http.serialization import CONVERTER as STRICT_CONVERTER

__all__ = [
    "AnthropicCountTokensRequest",
    "AnthropicError",
    "AnthropicErrorDetail",
    "AnthropicImageSource",
    "AnthropicInputBlock",
    "AnthropicInputMessage",
    "AnthropicMessage",
    "AnthropicMessagesRequest",
    "AnthropicOutputBlock",
    "AnthropicOutputConfig",
    "AnthropicOutputFormat",
    "AnthropicResultBlock",
    "AnthropicSystemBlock",
    "AnthropicTokenCount",
    "AnthropicTool",
    "AnthropicToolChoice",
    "AnthropicUsage",
    "StopReason",
    "dump",
    "read",
]

T = TypeVar("T")

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal"]


# --- request ----------------------------------------------------------------------------------------------------


@frozen
class AnthropicImageSource:
    """An image: ``base64`` (``media_type`` + ``data``) or ``url``."""

    type: Literal["base64", "url"]
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


@frozen
class AnthropicResultBlock:
    """A block of a ``tool_result``'s content: ``text`` or ``image``."""

    type: Literal["text", "image"]
    text: str | None = None
    source: AnthropicImageSource | None = None


@frozen
class AnthropicInputBlock:
    """A content block of an input message; which fields it needs depends on ``type``.

    ``thinking`` and ``redacted_thinking`` blocks (a Claude answer replayed as history) are accepted and dropped:
    earlier turns' thinking is not context for the model, which is also what Anthropic's API does with it.
    """

    type: Literal["text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking"]
    text: str | None = None
    source: AnthropicImageSource | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: str | list[AnthropicResultBlock] | None = None
    is_error: bool | None = None


@frozen
class AnthropicInputMessage:
    """One turn: text, or blocks."""

    role: Literal["user", "assistant"]
    content: str | list[AnthropicInputBlock]


@frozen
class AnthropicSystemBlock:
    """One text block of the system prompt."""

    type: Literal["text"]
    text: str


@frozen
class AnthropicTool:
    """A client tool (``type`` absent or ``custom``); Anthropic's server tools (``web_search_...``) are refused."""

    name: str
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    type: str | None = None


@frozen
class AnthropicToolChoice:
    """``auto``, ``any`` (some tool), ``tool`` (the one named), ``none``."""

    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


@frozen
class AnthropicOutputFormat:
    """Structured output: JSON matching ``schema``."""

    type: Literal["json_schema"]
    schema: dict[str, Any]


@frozen
class AnthropicOutputConfig:
    """``output_config``: only ``format`` is read (``effort`` and the rest are ignored)."""

    format: AnthropicOutputFormat | None = None


@frozen(kw_only=True)
class AnthropicCountTokensRequest:
    """``POST /v1/messages/count_tokens``: what a message would send, without generation parameters."""

    model: str
    messages: list[AnthropicInputMessage]
    system: str | list[AnthropicSystemBlock] | None = None
    tools: list[AnthropicTool] | None = None
    tool_choice: AnthropicToolChoice | None = None
    output_config: AnthropicOutputConfig | None = None


@frozen(kw_only=True)
class AnthropicMessagesRequest(AnthropicCountTokensRequest):
    """``POST /v1/messages``. ``model`` is a Switchyard name (``provider/model``, bare id or alias);
    ``max_tokens`` is required, as Anthropic requires it; ``metadata`` reaches the provider (``user_id`` and the
    fake vendor's ``fake_*`` knobs alike); ``top_k`` is accepted and not forwarded (no other vendor has it)."""

    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: list[str] | None = None
    metadata: dict[str, Any] | None = None
    stream: bool = False


# --- response ---------------------------------------------------------------------------------------------------


@frozen
class AnthropicOutputBlock:
    """A block of the answer: ``text`` (``text``) or ``tool_use`` (``id``, ``name``, ``input``)."""

    type: Literal["text", "tool_use"]
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None


@frozen
class AnthropicUsage:
    """Anthropic counts input without cache reads; those are ``cache_read_input_tokens``."""

    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0


@frozen(kw_only=True)
class AnthropicMessage:
    """The Message object."""

    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[AnthropicOutputBlock]
    stop_reason: StopReason | None
    stop_sequence: str | None = None
    usage: AnthropicUsage


@frozen
class AnthropicTokenCount:
    """An estimate (the gateway's tokenizer, not necessarily the serving vendor's)."""

    input_tokens: int


@frozen
class AnthropicErrorDetail:
    """``type`` is one of Anthropic's error types (``invalid_request_error``, ``rate_limit_error`` ...)."""

    type: str
    message: str


@frozen(kw_only=True)
class AnthropicError:
    """Anthropic's error body."""

    type: Literal["error"] = "error"
    error: AnthropicErrorDetail
    request_id: str | None = None


# --- the converter ----------------------------------------------------------------------------------------------


def _is_text_or(type_: Any, block: type) -> bool:
    """Whether ``type_`` is ``str | list[block]``, optionally ``| None``."""
    return set(get_args(type_)) - {type(None)} == {str, GenericAlias(list, (block,))}


def _text_or(converter: cattrs.Converter, block: type[T]) -> Callable[[object, Any], str | list[T] | None]:
    """Structure hook for ``str | list[block]`` (and ``| None``): Anthropic's 'a string, or blocks' (message content,
    system prompt, tool results)."""

    blocks_type: Any = GenericAlias(list, (block,))

    def structure(value: object, type_: Any) -> str | list[T] | None:
        if value is None and type(None) in get_args(type_):
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            blocks: list[T] = converter.structure(value, blocks_type)
            return blocks
        raise TypeError("expected a string or a list of content blocks")

    return structure


def _is_list(type_: Any) -> bool:
    return get_origin(type_) is list


def _arrays_only(type_: Any, converter: cattrs.Converter) -> Callable[[object, Any], list[Any]]:
    """cattrs makes a list of any iterable, so ``"END"`` would be the stop sequences ``["E", "N", "D"]``."""
    items = list_structure_factory(type_, converter)

    def structure(value: object, list_type: Any) -> list[Any]:
        if not isinstance(value, list):
            raise TypeError(f"expected an array, got {type(value).__name__}")
        structured: list[Any] = items(value, list_type)
        return structured

    return structure


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=False, detailed_validation=True)
    # The same strict scalars as the native API: "1" is no integer, true is no number.
    for scalar in (str, int, float, bool):
        converter.register_structure_hook(scalar, STRICT_CONVERTER.get_structure_hook(scalar))
    arrays: Any = _arrays_only  # cattrs' factory type wants its own hook signature
    converter.register_structure_hook_factory(_is_list, arrays)
    for block in (AnthropicInputBlock, AnthropicSystemBlock, AnthropicResultBlock):
        converter.register_structure_hook_func(partial(_is_text_or, block=block), _text_or(converter, block))
    converter.register_unstructure_hook(
        AnthropicOutputBlock, make_dict_unstructure_fn(AnthropicOutputBlock, converter, _cattrs_omit_if_default=True)
    )
    return converter


_CONVERTER: Final = _make_converter()


def read(data: object, cls: type[T]) -> T:
    """Structure a decoded JSON body into ``cls``; every problem is one ``FieldError`` (``$.messages[0].role``)."""
    if not isinstance(data, dict):
        raise RequestValidationError([FieldError("$", f"expected a JSON object, got {type(data).__name__}")])
    try:
        return _CONVERTER.structure(data, cls)
    except BaseValidationError as exc:
        errors = []
        for text in cattrs.transform_error(exc):
            reason, _, path = text.rpartition(" @ ")
            errors.append(FieldError(path or "$", _readable(reason or text)))
        raise RequestValidationError(errors) from None


_LITERAL_MISS: Final = re.compile(r"unknown error \((.*) not in literal typing\.Literal\[(.*)\]\)$")


def _readable(reason: str) -> str:
    """cattrs' wording without Python's: no module paths, and a literal miss says what is allowed."""
    reason = reason.replace(f"{__name__}.", "")
    miss = _LITERAL_MISS.match(reason)
    return f"{miss.group(1)!r} is not one of {miss.group(2)}" if miss else reason


def dump(obj: object) -> Any:
    """JSON-ready data for a response object."""
    return _CONVERTER.unstructure(obj)
