"""Domain: the normalized chat request, provider events and response, shared by every text vendor.

Vendor adapters translate to and from these; services and entrypoints never see a vendor type. Tool calls are
indexed (``index`` is the position of the call within one assistant turn) and carry the vendor's call id, so
parallel calls and their argument deltas can never be mixed up.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

from attrs import field, frozen

from domain.metering import Units
from domain.speech import SpeechOptions

__all__ = [
    "ChatRequest",
    "ContentPart",
    "Finish",
    "FinishReason",
    "Message",
    "ProviderEvent",
    "ProviderResponse",
    "ReasoningDelta",
    "ResponseFormat",
    "Role",
    "TextDelta",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "ToolChoice",
    "ToolSpec",
    "Usage",
    "UsageReport",
]

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


@frozen
class ContentPart:
    """One part of a message: ``text`` (with ``text``) or ``image`` (with ``image_url``, a URL or a data: URL)."""

    type: Literal["text", "image"]
    text: str | None = None
    image_url: str | None = None
    media_type: str | None = None


@frozen
class ToolCall:
    """A complete tool call: the vendor's ``id``, the tool ``name`` and its ``arguments`` as a JSON string."""

    id: str
    name: str
    arguments: str = "{}"


@frozen
class Message:
    """One chat turn. ``content`` is plain text or parts; assistant turns may carry ``tool_calls``;
    ``tool`` turns answer the call named by ``tool_call_id``."""

    role: Role
    content: str | list[ContentPart] = ""
    tool_calls: list[ToolCall] = field(factory=list)
    tool_call_id: str | None = None
    name: str | None = None


@frozen
class ToolSpec:
    """A tool the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(factory=lambda: {"type": "object", "properties": {}})


@frozen
class ToolChoice:
    """``auto`` (model decides), ``none``, ``required`` (some tool), or ``tool`` (the one named ``name``)."""

    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None


@frozen
class ResponseFormat:
    """Plain text, any JSON object, or JSON matching ``json_schema`` (named ``name``)."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: dict[str, Any] | None = None
    name: str | None = None


@frozen
class ChatRequest:
    """What the caller asks for; ``model`` is ``provider/model``, a bare id or an alias from the catalog."""

    model: str
    messages: list[Message]
    system: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] = field(factory=list)
    tools: list[ToolSpec] = field(factory=list)
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
    stream: bool = False
    fallbacks: list[str] = field(factory=list)
    metadata: dict[str, str] = field(factory=dict)
    speech: SpeechOptions | None = None
    """Voice the answer as it streams (``stream: true`` only): ``audio`` events beside the text."""


@frozen
class Usage:
    """Token accounting for one call."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    def units(self) -> Units:
        """The same counts as usage units (what the ledger and pricing take)."""
        return Units(self.input_tokens, self.output_tokens, self.cached_tokens, self.reasoning_tokens)


# --- normalized provider events (what a TextProvider yields) --------------------------------------------------


@frozen
class TextDelta:
    """A piece of the answer's text."""

    text: str


@frozen
class ReasoningDelta:
    """A piece of the model's visible reasoning (thinking blocks, reasoning summaries)."""

    text: str


@frozen
class ToolCallStart:
    """A tool call begins: its position ``index`` in this turn, the vendor's call ``id`` and the tool ``name``."""

    index: int
    id: str
    name: str


@frozen
class ToolCallDelta:
    """More JSON text of the arguments of the call at ``index``."""

    index: int
    id: str
    arguments: str


@frozen
class ToolCallEnd:
    """The call at ``index`` is complete."""

    index: int
    id: str


@frozen
class UsageReport:
    """Token usage, usually once near the end."""

    usage: Usage


@frozen
class Finish:
    """Why generation stopped; the last event of a successful provider stream."""

    reason: FinishReason


ProviderEvent: TypeAlias = (
    TextDelta | ReasoningDelta | ToolCallStart | ToolCallDelta | ToolCallEnd | UsageReport | Finish
)


@frozen
class ProviderResponse:
    """A whole answer, assembled from the events (the non-streaming convenience)."""

    text: str
    model: str
    provider: str
    finish_reason: FinishReason
    usage: Usage = field(factory=Usage)
    tool_calls: list[ToolCall] = field(factory=list)
    reasoning: str = ""
    latency_ms: float = 0.0
    cost_usd: float | None = None
