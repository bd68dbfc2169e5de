"""HTTP boundary, Anthropic door: Messages API requests to the domain ``ChatRequest``, and answers back.

What Anthropic says with blocks the domain says with roles: ``tool_result`` blocks of a user turn become ``tool``
messages (before the turn's own text, as every vendor wants results right after the calls), ``tool_use`` blocks of
an assistant turn become its ``tool_calls``. Each rule the wire types cannot express raises a ``ValidationError``
naming the field as the client wrote it (``messages[0].content[1].text``).
"""

from __future__ import annotations

import json
from typing import Any, Final, TypeVar

from domain.chat import (
    ChatRequest,
    ContentPart,
    FinishReason,
    Message,
    ProviderResponse,
    ResponseFormat,
    ToolCall,
    ToolSpec,
    Usage,
)
from domain.chat import ToolChoice as DomainToolChoice
from domain.errors import ProviderError, ValidationError
from entrypoints.http.doors.anthropic.wire import (
    AnthropicCountTokensRequest,
    AnthropicImageSource,
    AnthropicInputBlock,
    AnthropicInputMessage,
    AnthropicMessage,
    AnthropicMessagesRequest,
    AnthropicOutputBlock,
    AnthropicResultBlock,
    AnthropicSystemBlock,
    AnthropicTool,
    AnthropicToolChoice,
    AnthropicUsage,
    StopReason,
)

__all__ = ["chat_request", "message_response", "stop_reason", "wire_usage"]

V = TypeVar("V")

_STOP: Final[dict[FinishReason, StopReason]] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "error": "end_turn",  # a completed answer never ends in error; kept total for the type checker
}
_CHOICE: Final = {"auto": "auto", "any": "required", "tool": "tool", "none": "none"}
_DROPPED_BLOCKS: Final = frozenset({"thinking", "redacted_thinking"})


# --- request ----------------------------------------------------------------------------------------------------


def chat_request(body: AnthropicCountTokensRequest) -> ChatRequest:
    """The domain request for a Messages (or count_tokens) body."""
    full = body if isinstance(body, AnthropicMessagesRequest) else None
    if full is not None and full.temperature is not None and not 0.0 <= full.temperature <= 1.0:
        raise ValidationError("temperature", "must be between 0 and 1")  # Anthropic's range, not OpenAI's 0..2
    tools = [_tool(index, tool) for index, tool in enumerate(body.tools or [])]
    output = body.output_config.format if body.output_config is not None else None
    return ChatRequest(
        model=body.model,
        messages=_messages(body.messages),
        system=_system(body.system),
        temperature=full.temperature if full else None,
        top_p=full.top_p if full else None,
        max_tokens=full.max_tokens if full else None,
        stop=list(full.stop_sequences or []) if full else [],
        tools=tools,
        tool_choice=_tool_choice(body.tool_choice),
        response_format=ResponseFormat("json_schema", json_schema=output.schema) if output else None,
        stream=bool(full and full.stream),
        metadata=_metadata(full.metadata if full else None),
    )


def _system(system: str | list[AnthropicSystemBlock] | None) -> str | None:
    text = system if isinstance(system, str) or system is None else "\n".join(block.text for block in system)
    return text or None


def _tool(index: int, tool: AnthropicTool) -> ToolSpec:
    if tool.type not in (None, "custom"):
        raise ValidationError(f"tools[{index}].type", f"server tool {tool.type!r} is not served by this gateway")
    if tool.input_schema is None:
        raise ValidationError(f"tools[{index}].input_schema", "is required")
    return ToolSpec(tool.name, tool.description or "", tool.input_schema)


def _tool_choice(choice: AnthropicToolChoice | None) -> DomainToolChoice | None:
    if choice is None:
        return None
    if choice.type == "tool" and not choice.name:
        raise ValidationError("tool_choice.name", "is required when type is tool")
    mode: Any = _CHOICE[choice.type]
    return DomainToolChoice(mode, choice.name if choice.type == "tool" else None)


def _metadata(metadata: dict[str, Any] | None) -> dict[str, str]:
    """Scalars as text (``null`` dropped): the domain's metadata is string to string."""
    out: dict[str, str] = {}
    for key, value in (metadata or {}).items():
        if value is None:
            continue
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, bool | int | float):
            out[key] = json.dumps(value)
        else:
            raise ValidationError(f"metadata.{key}", "must be a string, number, boolean or null")
    return out


def _messages(messages: list[AnthropicInputMessage]) -> list[Message]:
    out: list[Message] = []
    tool_names: dict[str, str] = {}  # tool_use id -> tool name: some vendors (Gemini) name the tool in its result
    for index, message in enumerate(messages):
        if isinstance(message.content, str):
            out.append(Message(message.role, message.content))
        elif message.role == "assistant":
            out.append(_assistant(index, message.content, tool_names))
        else:
            out.extend(_user(index, message.content, tool_names))
    return out


def _assistant(index: int, blocks: list[AnthropicInputBlock], tool_names: dict[str, str]) -> Message:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for position, block in enumerate(blocks):
        where = f"messages[{index}].content[{position}]"
        if block.type == "text":
            texts.append(_required(block.text, f"{where}.text"))
        elif block.type == "tool_use":
            call_id = _required(block.id, f"{where}.id")
            name = _required(block.name, f"{where}.name")
            tool_names[call_id] = name
            calls.append(ToolCall(call_id, name, json.dumps(block.input or {})))
        elif block.type not in _DROPPED_BLOCKS:
            raise ValidationError(f"{where}.type", f"{block.type} blocks belong to user turns")
    return Message("assistant", "".join(texts), tool_calls=calls)


def _user(index: int, blocks: list[AnthropicInputBlock], tool_names: dict[str, str]) -> list[Message]:
    results: list[Message] = []
    parts: list[ContentPart] = []
    for position, block in enumerate(blocks):
        where = f"messages[{index}].content[{position}]"
        if block.type == "text":
            parts.append(ContentPart("text", text=_required(block.text, f"{where}.text")))
        elif block.type == "image":
            parts.append(_image(block.source, f"{where}.source"))
        elif block.type == "tool_result":
            call_id = _required(block.tool_use_id, f"{where}.tool_use_id")
            content = _result_content(block.content, f"{where}.content")
            results.append(Message("tool", content, tool_call_id=call_id, name=tool_names.get(call_id)))
        elif block.type not in _DROPPED_BLOCKS:
            raise ValidationError(f"{where}.type", f"{block.type} blocks belong to assistant turns")
    return [*results, Message("user", parts)] if parts else results


def _result_content(content: str | list[AnthropicResultBlock] | None, where: str) -> str | list[ContentPart]:
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for position, block in enumerate(content):
        if block.type == "text":
            parts.append(ContentPart("text", text=_required(block.text, f"{where}[{position}].text")))
        else:
            parts.append(_image(block.source, f"{where}[{position}].source"))
    if all(part.type == "text" for part in parts):
        return "\n".join(part.text or "" for part in parts)
    return parts


def _image(source: AnthropicImageSource | None, where: str) -> ContentPart:
    source = _required(source, where)
    if source.type == "url":
        return ContentPart("image", image_url=_required(source.url, f"{where}.url"))
    media_type = _required(source.media_type, f"{where}.media_type")
    data = _required(source.data, f"{where}.data")
    return ContentPart("image", image_url=f"data:{media_type};base64,{data}", media_type=media_type)


def _required(value: V | None, where: str) -> V:
    if value is None:
        raise ValidationError(where, "is required")
    return value


# --- response ---------------------------------------------------------------------------------------------------


def stop_reason(finish: FinishReason, *, tool_calls: bool = False) -> StopReason:
    """Anthropic's stop reason; an answer with tool calls is ``tool_use`` (the client's loop waits for it) even when
    the vendor said plain ``stop``."""
    if tool_calls and finish == "stop":
        return "tool_use"
    return _STOP[finish]


def wire_usage(usage: Usage) -> AnthropicUsage:
    """Anthropic's input count excludes cache reads; the domain's includes them."""
    cached = usage.cached_tokens
    return AnthropicUsage(max(0, usage.input_tokens - cached), usage.output_tokens, cached)


def message_response(response: ProviderResponse, message_id: str) -> AnthropicMessage:
    """The Message object for a whole answer (reasoning is not shown: the client asked for no thinking blocks)."""
    content = [AnthropicOutputBlock("text", text=response.text)] if response.text or not response.tool_calls else []
    for call in response.tool_calls:
        content.append(AnthropicOutputBlock("tool_use", id=call.id, name=call.name, input=_tool_input(response, call)))
    return AnthropicMessage(
        id=message_id,
        model=response.model,
        content=content,
        stop_reason=stop_reason(response.finish_reason, tool_calls=bool(response.tool_calls)),
        usage=wire_usage(response.usage),
    )


def _tool_input(response: ProviderResponse, call: ToolCall) -> dict[str, Any]:
    try:
        value = json.loads(call.arguments)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise ProviderError(response.provider, f"the model's arguments for tool {call.name!r} are not a JSON object")
    return value
