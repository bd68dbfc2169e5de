"""HTTP boundary (OpenAI door): Responses API requests to the domain ``ChatRequest``, whole answers back.

``input`` (a string, or message / ``function_call`` / ``function_call_output`` items) becomes the conversation,
``instructions`` its system message; consecutive ``function_call`` items join the assistant turn before them. The
answer's output items are the reasoning (when the model showed any), the message, then one ``function_call`` per
tool call. Responses are not stored: ``previous_response_id`` is a 400 (send the conversation in ``input``).
"""

from __future__ import annotations

from typing import Any, Final

import attrs
import msgspec

from domain.chat import (
    ChatRequest,
    ContentPart,
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
from entrypoints.http.doors.openai.wire_responses import (
    OpenAIInputItem,
    OpenAIInputPart,
    OpenAIOutputItem,
    OpenAIOutputPart,
    OpenAIResponse,
    OpenAIResponsesRequest,
    OpenAIResponseText,
    OpenAIResponseTool,
    OpenAIResponseToolChoice,
    OpenAIResponseUsage,
    OpenAISummaryPart,
)

__all__ = [
    "compact",
    "encode_response",
    "incomplete_details",
    "response_object",
    "response_usage",
    "responses_chat_request",
]

_ROLES: Final[dict[str, Role]] = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_TEXT_PARTS: Final = ("input_text", "output_text")
_TOOL_CHOICES: Final = ("auto", "none", "required")


def responses_chat_request(body: OpenAIResponsesRequest) -> ChatRequest:
    """The domain request for a Responses body (``MalformedRequestError`` naming what the door cannot take)."""
    if body.previous_response_id is not None:
        raise invalid("previous_response_id", "responses are not stored here; send the whole conversation in input")
    if body.max_output_tokens is not None and body.max_output_tokens < 1:
        raise invalid("max_output_tokens", f"must be at least 1, got {body.max_output_tokens}")
    messages = [Message("user", body.input)] if isinstance(body.input, str) else _conversation(body.input)
    return ChatRequest(
        model=body.model,
        messages=messages,
        system=body.instructions,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_output_tokens,
        tools=[_tool(index, tool) for index, tool in enumerate(body.tools or [])],
        tool_choice=_tool_choice(body.tool_choice),
        response_format=_format(body.text),
        stream=bool(body.stream),
        fallbacks=list(body.fallbacks or []),
        metadata=dict(body.metadata or {}),
    )


def _conversation(items: list[OpenAIInputItem]) -> list[Message]:
    messages: list[Message] = []
    for index, item in enumerate(items):
        where = f"input[{index}]"
        kind = item.type or "message"
        if kind == "message":
            if item.role is None:
                raise invalid(f"{where}.role", "a message item needs a role")
            messages.append(Message(role=_ROLES[item.role], content=_content(where, item.content)))
        elif kind == "function_call":
            if not item.call_id or not item.name:
                raise invalid(f"{where}.call_id", "a function_call item needs call_id and name")
            call = ToolCall(id=item.call_id, name=item.name, arguments=item.arguments or "{}")
            if messages and messages[-1].role == "assistant":  # one assistant turn: its text and its calls
                messages[-1] = attrs.evolve(messages[-1], tool_calls=[*messages[-1].tool_calls, call])
            else:
                messages.append(Message("assistant", "", tool_calls=[call]))
        elif kind == "function_call_output":
            if not item.call_id:
                raise invalid(f"{where}.call_id", "a function_call_output item needs the call_id it answers")
            messages.append(Message("tool", item.output or "", tool_call_id=item.call_id))
        else:
            raise invalid(f"{where}.type", f"input items of type {kind!r} are not served")
    return messages


def _content(where: str, content: str | list[OpenAIInputPart] | None) -> str | list[ContentPart]:
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[ContentPart] = []
    for index, part in enumerate(content):
        if part.type in _TEXT_PARTS:
            parts.append(ContentPart("text", text=part.text or ""))
        elif part.type == "input_image" and part.image_url:
            parts.append(ContentPart("image", image_url=part.image_url))
        else:
            detail = "needs image_url" if part.type == "input_image" else "is not served"
            raise invalid(f"{where}.content[{index}].type", f"a part of type {part.type!r} {detail}")
    return parts


def _tool(index: int, tool: OpenAIResponseTool) -> ToolSpec:
    if tool.type != "function" or not tool.name:
        raise invalid(f"tools[{index}].type", f"only function tools (with a name) are served, got {tool.type!r}")
    if tool.parameters is None:
        return ToolSpec(name=tool.name, description=tool.description or "")
    return ToolSpec(name=tool.name, description=tool.description or "", parameters=tool.parameters)


def _tool_choice(choice: str | OpenAIResponseToolChoice | None) -> ToolChoice | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICES:
            raise invalid("tool_choice", f"expected one of {', '.join(_TOOL_CHOICES)} or a named function")
        return ToolChoice(mode=choice)  # type: ignore[arg-type]  # narrowed by the check above
    if choice.type != "function" or not choice.name:
        raise invalid("tool_choice", 'a named tool choice is {"type": "function", "name": ...}')
    return ToolChoice(mode="tool", name=choice.name)


def _format(text: OpenAIResponseText | None) -> ResponseFormat | None:
    spec = text.format if text is not None else None
    if spec is None or spec.type == "text":
        return None
    if spec.type == "json_object":
        return ResponseFormat("json_object")
    if not spec.schema:
        raise invalid("text.format.schema", "type json_schema needs a schema")
    return ResponseFormat("json_schema", json_schema=spec.schema, name=spec.name)


# --- whole answers --------------------------------------------------------------------------------------------------


def response_usage(usage: Usage) -> OpenAIResponseUsage:
    """The Responses API's token counts for Switchyard's."""
    return OpenAIResponseUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.input_tokens + usage.output_tokens,
        input_tokens_details={"cached_tokens": usage.cached_tokens},
        output_tokens_details={"reasoning_tokens": usage.reasoning_tokens},
    )


def incomplete_details(finish: str) -> dict[str, str] | None:
    """Why an answer is ``incomplete`` (``None``: it is complete)."""
    if finish == "length":
        return {"reason": "max_output_tokens"}
    if finish == "content_filter":
        return {"reason": "content_filter"}
    return None


def response_object(response: ProviderResponse, *, response_id: str, created: int) -> OpenAIResponse:
    """The ``response`` object for a whole answer."""
    output: list[OpenAIOutputItem] = []
    if response.reasoning:
        summary = [OpenAISummaryPart(response.reasoning)]
        output.append(OpenAIOutputItem(id=f"rs_{response_id}", type="reasoning", summary=summary))
    if response.text or not response.tool_calls:
        output.append(
            OpenAIOutputItem(
                id=f"msg_{response_id}",
                type="message",
                status="completed",
                role="assistant",
                content=[OpenAIOutputPart(response.text)],
            )
        )
    output += [
        OpenAIOutputItem(
            id=f"fc_{call.id}",
            type="function_call",
            status="completed",
            call_id=call.id,
            name=call.name,
            arguments=call.arguments,
        )
        for call in response.tool_calls
    ]
    incomplete = incomplete_details(response.finish_reason)
    return OpenAIResponse(
        id=response_id,
        created_at=created,
        model=response.model,
        output=output,
        status="completed" if incomplete is None else "incomplete",
        incomplete_details=incomplete,
        usage=response_usage(response.usage),
    )


def compact(response: OpenAIResponse) -> dict[str, Any]:
    """``response`` as JSON-ready data, each output item without the fields of the other kinds of item."""
    data: dict[str, Any] = msgspec.to_builtins(response)
    data["output"] = [{k: v for k, v in item.items() if v is not None} for item in data["output"]]
    return data


def encode_response(response: OpenAIResponse) -> bytes:
    """The JSON of ``response`` (see ``compact``)."""
    return msgspec.json.encode(compact(response))
