"""HTTP boundary (OpenAI door): Chat Completions requests to the domain ``ChatRequest``, whole answers back.

Only the shape changes: the request then goes through the same ``ChatService`` as ``POST /api/v1/chat`` (rules,
retries, fallbacks, ledger, metrics), whose errors name the domain's fields. What the door itself refuses is what
the domain cannot express (``n`` other than 1, a content part or tool type Switchyard does not serve): a 400 naming
the parameter.
"""

from __future__ import annotations

from typing import Final, Literal

from domain.chat import (
    ChatRequest,
    ContentPart,
    FinishReason,
    Message,
    ProviderResponse,
    ResponseFormat,
    Role,
    ToolCall,
    ToolChoice,
    ToolSpec,
    Usage,
)
from entrypoints.http.doors.openai.body import invalid
from entrypoints.http.doors.openai.wire import (
    OpenAIAssistantMessage,
    OpenAIChatCompletion,
    OpenAIChatRequest,
    OpenAIChoice,
    OpenAICompletionDetails,
    OpenAIContentPart,
    OpenAIFunctionCall,
    OpenAIMessage,
    OpenAINamedToolChoice,
    OpenAIPromptDetails,
    OpenAIResponseFormat,
    OpenAITool,
    OpenAIToolCall,
    OpenAIUsage,
)

__all__ = ["chat_request", "completion", "finish_reason", "openai_usage"]

OpenAIFinish = Literal["stop", "length", "tool_calls", "content_filter"]
_ROLES: Final[dict[str, Role]] = {
    "system": "system",
    "developer": "system",  # OpenAI's newer name for system instructions
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}
_TOOL_CHOICES: Final = ("auto", "none", "required")


def chat_request(body: OpenAIChatRequest) -> ChatRequest:
    """The domain request for an OpenAI Chat Completions body (``MalformedRequestError`` naming what it cannot take)."""
    if body.n is not None and body.n != 1:
        raise invalid("n", f"Switchyard answers one choice per request (n=1), got {body.n}")
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    limit, max_tokens = "max_completion_tokens", body.max_completion_tokens
    if max_tokens is None:
        limit, max_tokens = "max_tokens", body.max_tokens
    if max_tokens is not None and max_tokens < 1:  # named as the client spelt it (the domain says max_tokens)
        raise invalid(limit, f"must be at least 1, got {max_tokens}")
    return ChatRequest(
        model=body.model,
        messages=[_message(index, message) for index, message in enumerate(body.messages)],
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=max_tokens,
        stop=stop,
        tools=[_tool(index, tool) for index, tool in enumerate(body.tools or [])],
        tool_choice=_tool_choice(body.tool_choice),
        response_format=_response_format(body.response_format),
        stream=bool(body.stream),
        fallbacks=list(body.fallbacks or []),
        metadata=dict(body.metadata or {}),
    )


def _message(index: int, message: OpenAIMessage) -> Message:
    content: str | list[ContentPart]
    if message.content is None:
        content = ""
    elif isinstance(message.content, str):
        content = message.content
    else:
        content = [_part(f"messages[{index}].content[{at}]", part) for at, part in enumerate(message.content)]
    calls = [
        ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments or "{}")
        for call in message.tool_calls or []
    ]
    return Message(
        role=_ROLES[message.role],
        content=content,
        tool_calls=calls,
        tool_call_id=message.tool_call_id,
        name=message.name,
    )


def _part(where: str, part: OpenAIContentPart) -> ContentPart:
    if part.type == "text":
        return ContentPart("text", text=part.text)
    if part.type == "refusal":  # an assistant turn of the history that refused: its words are its content
        return ContentPart("text", text=part.refusal or "")
    if part.type == "image_url":
        if part.image_url is None:
            raise invalid(f"{where}.image_url", "an image_url part needs image_url.url")
        return ContentPart("image", image_url=part.image_url.url)
    raise invalid(f"{where}.type", f"content parts of type {part.type!r} are not served; use text or image_url")


def _tool(index: int, tool: OpenAITool) -> ToolSpec:
    if tool.type != "function":
        raise invalid(f"tools[{index}].type", f"only function tools are served, got {tool.type!r}")
    function = tool.function
    if function.parameters is None:
        return ToolSpec(name=function.name, description=function.description or "")
    return ToolSpec(name=function.name, description=function.description or "", parameters=function.parameters)


def _tool_choice(choice: str | OpenAINamedToolChoice | None) -> ToolChoice | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICES:
            raise invalid("tool_choice", f"expected one of {', '.join(_TOOL_CHOICES)} or a named function")
        return ToolChoice(mode=choice)  # type: ignore[arg-type]  # narrowed by the check above
    if choice.type != "function" or choice.function is None:
        raise invalid("tool_choice", 'a named tool choice is {"type": "function", "function": {"name": ...}}')
    return ToolChoice(mode="tool", name=choice.function.name)


def _response_format(fmt: OpenAIResponseFormat | None) -> ResponseFormat | None:
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return ResponseFormat("json_object")
    schema = fmt.json_schema
    if schema is None or not schema.schema:
        raise invalid("response_format.json_schema", "type json_schema needs json_schema.schema")
    return ResponseFormat("json_schema", json_schema=schema.schema, name=schema.name)


# --- whole answers --------------------------------------------------------------------------------------------------


def finish_reason(reason: FinishReason | str | None) -> OpenAIFinish:
    """OpenAI's finish reason for Switchyard's (``error`` has no counterpart: the answer simply stopped)."""
    if reason in ("length", "tool_calls", "content_filter"):
        return reason
    return "stop"


def openai_usage(usage: Usage) -> OpenAIUsage:
    """OpenAI's token counts for Switchyard's."""
    return OpenAIUsage(
        prompt_tokens=usage.input_tokens,
        completion_tokens=usage.output_tokens,
        total_tokens=usage.input_tokens + usage.output_tokens,
        prompt_tokens_details=OpenAIPromptDetails(cached_tokens=usage.cached_tokens),
        completion_tokens_details=OpenAICompletionDetails(reasoning_tokens=usage.reasoning_tokens),
    )


def completion(response: ProviderResponse, *, completion_id: str, created: int) -> OpenAIChatCompletion:
    """The ``chat.completion`` object for a whole answer."""
    calls = [
        OpenAIToolCall(id=call.id, function=OpenAIFunctionCall(name=call.name, arguments=call.arguments))
        for call in response.tool_calls
    ]
    message = OpenAIAssistantMessage(
        content=response.text if response.text or not calls else None,
        tool_calls=calls or None,
        reasoning_content=response.reasoning or None,
    )
    return OpenAIChatCompletion(
        id=completion_id,
        created=created,
        model=response.model,
        choices=[OpenAIChoice(message=message, finish_reason=finish_reason(response.finish_reason))],
        usage=openai_usage(response.usage),
    )
