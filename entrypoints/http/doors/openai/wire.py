"""HTTP boundary (OpenAI door): the request and response bodies of OpenAI's HTTP API, as attrs classes.

Requests are decoded with msgspec (``body.read_wire``): fields Switchyard does not serve are left out of these classes
and so accepted and ignored, as OpenAI's own server does with fields it does not know, while a known field of the
wrong type is a 400 naming it. Responses are encoded with msgspec too. The same classes document the door in
``/openapi.json``. Names carry an ``OpenAI`` prefix: OpenAPI components are named by class, and the domain already
has a ``Message``, a ``Usage`` and a ``ToolCall``.
"""

from __future__ import annotations

from typing import Any, Literal

from attrs import field, frozen

__all__ = [
    "OpenAIAssistantMessage",
    "OpenAIChatCompletion",
    "OpenAIChatRequest",
    "OpenAIChoice",
    "OpenAICompletionDetails",
    "OpenAIContentPart",
    "OpenAIEmbedding",
    "OpenAIEmbeddingList",
    "OpenAIEmbeddingRequest",
    "OpenAIEmbeddingUsage",
    "OpenAIError",
    "OpenAIErrorBody",
    "OpenAIFunction",
    "OpenAIFunctionCall",
    "OpenAIFunctionName",
    "OpenAIImage",
    "OpenAIImageRequest",
    "OpenAIImageURL",
    "OpenAIImagesResponse",
    "OpenAIJsonSchema",
    "OpenAIMessage",
    "OpenAIModel",
    "OpenAIModelList",
    "OpenAINamedToolChoice",
    "OpenAIPromptDetails",
    "OpenAIResponseFormat",
    "OpenAIStreamOptions",
    "OpenAITool",
    "OpenAIToolCall",
    "OpenAIUsage",
]

# --- chat completions: request ----------------------------------------------------------------------------------


@frozen
class OpenAIImageURL:
    """An image of a user message: a URL or a ``data:`` URL."""

    url: str
    detail: str | None = None


@frozen
class OpenAIContentPart:
    """One part of a message's content: ``text`` (with ``text``), ``image_url``, or an assistant's ``refusal``."""

    type: str
    text: str | None = None
    image_url: OpenAIImageURL | None = None
    refusal: str | None = None


@frozen
class OpenAIFunctionCall:
    """The function an assistant called and its arguments (a JSON text)."""

    name: str
    arguments: str = "{}"


@frozen
class OpenAIToolCall:
    """A tool call of an assistant message."""

    id: str
    function: OpenAIFunctionCall
    type: str = "function"


@frozen
class OpenAIMessage:
    """One turn: ``developer`` counts as ``system``; ``tool`` turns answer the call named by ``tool_call_id``."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[OpenAIContentPart] | None = None
    name: str | None = None
    tool_calls: list[OpenAIToolCall] | None = None
    tool_call_id: str | None = None


@frozen
class OpenAIFunction:
    """A function tool: ``parameters`` is a JSON Schema object (``strict`` is accepted and not enforced here)."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


@frozen
class OpenAITool:
    """A tool the model may call (only ``function`` tools are served)."""

    function: OpenAIFunction
    type: str = "function"


@frozen
class OpenAIFunctionName:
    """The function a named tool choice forces."""

    name: str


@frozen
class OpenAINamedToolChoice:
    """``{"type": "function", "function": {"name": ...}}``: call this tool."""

    type: str
    function: OpenAIFunctionName | None = None


@frozen
class OpenAIJsonSchema:
    """The schema of a ``json_schema`` response format."""

    name: str
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


@frozen
class OpenAIResponseFormat:
    """``text``, ``json_object`` or ``json_schema`` (with ``json_schema``)."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: OpenAIJsonSchema | None = None


@frozen
class OpenAIStreamOptions:
    """``include_usage``: one more chunk, before ``[DONE]``, with the usage and no choices."""

    include_usage: bool | None = None


@frozen
class OpenAIChatRequest:
    """``POST /v1/chat/completions``. ``model`` is a Switchyard name (``provider/model``, a bare id or an alias);
    ``n`` must be 1; ``max_completion_tokens`` wins over ``max_tokens``. ``metadata`` reaches the provider (the
    fake's ``fake_*`` switches) and ``fallbacks`` (via ``extra_body``) are models tried in order when this one fails.
    ``user`` and ``parallel_tool_calls`` are accepted and not forwarded."""

    model: str
    messages: list[OpenAIMessage]
    stream: bool | None = None
    stream_options: OpenAIStreamOptions | None = None
    n: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    tools: list[OpenAITool] | None = None
    tool_choice: str | OpenAINamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: OpenAIResponseFormat | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    fallbacks: list[str] | None = None


# --- chat completions: response ---------------------------------------------------------------------------------


@frozen
class OpenAIAssistantMessage:
    """The answer: text (``null`` when the turn is only tool calls), tool calls, and any visible reasoning."""

    content: str | None
    tool_calls: list[OpenAIToolCall] | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    role: Literal["assistant"] = "assistant"


@frozen
class OpenAIChoice:
    """The one choice (``n`` is 1)."""

    message: OpenAIAssistantMessage
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"]
    index: int = 0
    logprobs: dict[str, Any] | None = None


@frozen
class OpenAIPromptDetails:
    """Input tokens served from the vendor's cache."""

    cached_tokens: int = 0


@frozen
class OpenAICompletionDetails:
    """Output tokens spent on reasoning."""

    reasoning_tokens: int = 0


@frozen
class OpenAIUsage:
    """Token counts of the call."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: OpenAIPromptDetails = field(factory=OpenAIPromptDetails)
    completion_tokens_details: OpenAICompletionDetails = field(factory=OpenAICompletionDetails)


@frozen
class OpenAIChatCompletion:
    """A whole answer; ``model`` is the model that served (``provider/id``, after any fallback)."""

    id: str
    created: int
    model: str
    choices: list[OpenAIChoice]
    usage: OpenAIUsage
    object: Literal["chat.completion"] = "chat.completion"
    system_fingerprint: str | None = None


# --- models -------------------------------------------------------------------------------------------------------


@frozen
class OpenAIModel:
    """One servable model: its Switchyard id (``provider/id``) and the provider serving it."""

    id: str
    owned_by: str
    created: int = 0
    object: Literal["model"] = "model"


@frozen
class OpenAIModelList:
    """``GET /v1/models``: every enabled model, in catalog order."""

    data: list[OpenAIModel]
    object: Literal["list"] = "list"


# --- embeddings ----------------------------------------------------------------------------------------------------


@frozen
class OpenAIEmbeddingRequest:
    """``POST /v1/embeddings``: ``input`` is a string or a list of strings (token arrays are refused: send text);
    ``encoding_format`` ``base64`` (what the SDK asks by default) gives little-endian float32 in base64."""

    model: str
    input: str | list[Any]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = None
    user: str | None = None


@frozen
class OpenAIEmbedding:
    """One vector, at the position of its input: a list of floats, or base64 of little-endian float32."""

    index: int
    embedding: list[float] | str
    object: Literal["embedding"] = "embedding"


@frozen
class OpenAIEmbeddingUsage:
    """Input tokens (embeddings have no output tokens)."""

    prompt_tokens: int
    total_tokens: int


@frozen
class OpenAIEmbeddingList:
    """The vectors, one per input in input order, from the model that served."""

    data: list[OpenAIEmbedding]
    model: str
    usage: OpenAIEmbeddingUsage
    object: Literal["list"] = "list"


# --- images --------------------------------------------------------------------------------------------------------


@frozen
class OpenAIImageRequest:
    """``POST /v1/images/generations``. ``response_format`` ``url`` (the default) answers the absolute URL of the
    image in the media store (``GET /api/v1/media/{id}``, same bearer token); ``b64_json`` answers the bytes.
    ``style``, ``moderation`` and ``user`` are accepted and not forwarded."""

    model: str
    prompt: str
    n: int | None = None
    size: str | None = None
    quality: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    background: str | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    user: str | None = None
    fallbacks: list[str] | None = None
    metadata: dict[str, str] | None = None


@frozen
class OpenAIImage:
    """One image: where to fetch it, or its bytes; and the prompt the vendor drew when it rewrote ours."""

    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None


@frozen
class OpenAIImagesResponse:
    """The images, in order."""

    created: int
    data: list[OpenAIImage]


# --- errors --------------------------------------------------------------------------------------------------------


@frozen
class OpenAIError:
    """What went wrong: ``type`` as OpenAI names its classes of error, ``param`` the request field at fault,
    ``code`` Switchyard's stable error code (``model_not_found`` for an unknown model, as OpenAI says it)."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


@frozen
class OpenAIErrorBody:
    """Every error of the door, and the ``data:`` line of an error that ends a stream."""

    error: OpenAIError
