"""HTTP boundary (OpenAI door): the request and response bodies of OpenAI's Responses API (``POST /v1/responses``).

As in ``wire``: decoded and encoded with msgspec, fields Switchyard does not serve are left out (so accepted and
ignored), and the classes document the route. Responses are not stored, so ``previous_response_id`` is refused.
"""

from __future__ import annotations

from typing import Any, Literal

from attrs import field, frozen

__all__ = [
    "OpenAIInputItem",
    "OpenAIInputPart",
    "OpenAIOutputItem",
    "OpenAIOutputPart",
    "OpenAIResponse",
    "OpenAIResponseFormatSpec",
    "OpenAIResponseText",
    "OpenAIResponseTool",
    "OpenAIResponseToolChoice",
    "OpenAIResponseUsage",
    "OpenAIResponsesRequest",
    "OpenAISummaryPart",
]


@frozen
class OpenAIInputPart:
    """One part of an input message: ``input_text``/``output_text`` (with ``text``) or ``input_image``."""

    type: str
    text: str | None = None
    image_url: str | None = None


@frozen
class OpenAIInputItem:
    """An input item: a message (``role`` and ``content``; ``type`` ``message`` or absent), a ``function_call`` the
    model made earlier, or a ``function_call_output`` answering it (``call_id``, ``output``)."""

    type: str | None = None
    role: Literal["system", "developer", "user", "assistant"] | None = None
    content: str | list[OpenAIInputPart] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None


@frozen
class OpenAIResponseTool:
    """A function tool (the Responses API puts name and parameters at the top level)."""

    type: str
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


@frozen
class OpenAIResponseToolChoice:
    """``{"type": "function", "name": ...}``: call this tool."""

    type: str
    name: str | None = None


@frozen
class OpenAIResponseFormatSpec:
    """``text``, ``json_object``, or ``json_schema`` with ``name`` and ``schema`` beside the type."""

    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None


@frozen
class OpenAIResponseText:
    """How the answer's text is shaped."""

    format: OpenAIResponseFormatSpec | None = None


@frozen
class OpenAIResponsesRequest:
    """``POST /v1/responses``: ``input`` is a string or a list of items; ``instructions`` is the system message.
    ``metadata`` reaches the provider (the fake's ``fake_*`` switches); ``fallbacks`` (``extra_body``) as for chat."""

    model: str
    input: str | list[OpenAIInputItem]
    instructions: str | None = None
    tools: list[OpenAIResponseTool] | None = None
    tool_choice: str | OpenAIResponseToolChoice | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stream: bool | None = None
    text: OpenAIResponseText | None = None
    metadata: dict[str, str] | None = None
    previous_response_id: str | None = None
    fallbacks: list[str] | None = None


# --- response ----------------------------------------------------------------------------------------------------


@frozen
class OpenAIOutputPart:
    """The text of an output message."""

    text: str
    type: Literal["output_text"] = "output_text"
    annotations: list[dict[str, Any]] = field(factory=list)
    logprobs: list[dict[str, Any]] = field(factory=list)


@frozen
class OpenAISummaryPart:
    """A piece of a reasoning item's summary."""

    text: str
    type: Literal["summary_text"] = "summary_text"


@frozen
class OpenAIOutputItem:
    """One output item: a ``message`` (``role``, ``content``), a ``function_call`` (``call_id``, ``name``,
    ``arguments``) or a ``reasoning`` item (``summary``); fields of the other kinds are absent."""

    id: str
    type: Literal["message", "function_call", "reasoning"]
    status: str | None = None
    role: Literal["assistant"] | None = None
    content: list[OpenAIOutputPart] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    summary: list[OpenAISummaryPart] | None = None


@frozen
class OpenAIResponseUsage:
    """Token counts of the response."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: dict[str, int] = field(factory=lambda: {"cached_tokens": 0})
    output_tokens_details: dict[str, int] = field(factory=lambda: {"reasoning_tokens": 0})


@frozen
class OpenAIResponse:
    """The ``response`` object; ``model`` is the model that served. ``status`` is ``incomplete`` (with its reason)
    when the answer was cut by ``max_output_tokens`` or a content filter."""

    id: str
    created_at: int
    model: str
    output: list[OpenAIOutputItem]
    status: Literal["in_progress", "completed", "incomplete", "failed"] = "completed"
    usage: OpenAIResponseUsage | None = None
    incomplete_details: dict[str, str] | None = None
    error: dict[str, str] | None = None
    object: Literal["response"] = "response"
    parallel_tool_calls: bool = True
    tool_choice: str = "auto"
    tools: list[dict[str, Any]] = field(factory=list)
