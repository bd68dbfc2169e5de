"""Driven adapter (Anthropic): translate a ``ChatRequest`` into Messages API arguments.

System text (the request's and any system-role turns) goes to ``system``; images become ``image`` blocks (data: URLs
as base64 sources); assistant tool calls become ``tool_use`` blocks and tool turns ``tool_result`` blocks inside a
user turn, with consecutive turns of one role merged, because the API wants user and assistant to alternate.
"""

from __future__ import annotations

import json
from typing import Any

from domain.catalog import ModelSpec
from domain.chat import ChatRequest, ContentPart, Message
from domain.errors import ValidationError

__all__ = ["DEFAULT_MAX_TOKENS", "messages_params"]

#: Anthropic requires ``max_tokens``; used when neither the request nor the catalog sets one.
DEFAULT_MAX_TOKENS = 4096


def _text(content: str | list[ContentPart]) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.text or "" for part in content if part.type == "text")


def _image(part: ContentPart) -> dict[str, Any]:
    url = part.image_url or ""
    if url.startswith("data:"):
        header, sep, data = url.partition(",")
        if not sep or ";base64" not in header:
            raise ValidationError("messages.content.image_url", "a data: URL image must be base64-encoded")
        media_type = part.media_type or header[len("data:") :].split(";", 1)[0] or "image/png"
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if not url:
        raise ValidationError("messages.content.image_url", "an image part needs an image_url")
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        result = {"type": "tool_result", "tool_use_id": message.tool_call_id or "", "content": _text(message.content)}
        return [result]
    if isinstance(message.content, str):
        blocks = [{"type": "text", "text": message.content}] if message.content else []
    else:
        blocks = [{"type": "text", "text": p.text or ""} if p.type == "text" else _image(p) for p in message.content]
    for call in message.tool_calls:
        try:
            arguments = json.loads(call.arguments or "{}")
        except (ValueError, RecursionError) as exc:  # RecursionError: nested past the decoder's depth (a 500 else)
            raise ValidationError(
                "messages.tool_calls.arguments", f"call {call.id!r} has invalid or too deeply nested JSON"
            ) from exc
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def _turns(messages: list[Message]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def messages_params(request: ChatRequest, model: ModelSpec, *, stream: bool = True) -> dict[str, Any]:
    """The body of ``POST /v1/messages`` (what ``messages.create`` would send), unset ones left out."""
    system = [request.system] if request.system else []
    system += [_text(m.content) for m in request.messages if m.role == "system"]
    options: dict[str, Any] = {
        "system": "\n\n".join(system) or None,
        "max_tokens": request.max_tokens or model.max_output_tokens or DEFAULT_MAX_TOKENS,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "stop_sequences": request.stop or None,
    }
    if request.tools:
        options["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools
        ]
    choice = request.tool_choice
    if choice is not None:
        kinds = {"auto": "auto", "none": "none", "required": "any", "tool": "tool"}
        options["tool_choice"] = {"type": kinds[choice.mode]} | ({"name": choice.name} if choice.mode == "tool" else {})
    fmt = request.response_format
    if fmt is not None and fmt.type != "text":
        # Anthropic has no "any JSON object" mode: an open object schema is the closest structured output.
        schema = fmt.json_schema if fmt.type == "json_schema" and fmt.json_schema else {"type": "object"}
        options["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    aliases = {"stop_sequences": "stop", "output_config": "response_format"}
    unsupported = model.unsupported_params
    params = {k: v for k, v in model.default_params.items() if k not in unsupported}
    for key, value in options.items():
        if value is not None and key not in unsupported and aliases.get(key) not in unsupported:
            params[key] = value
    return {"model": model.wire_name, "messages": _turns(request.messages), "stream": stream, **params}
