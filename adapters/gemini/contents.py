"""Driven adapter (Gemini): translate a ``ChatRequest`` into google-genai ``contents`` and a ``GenerateContentConfig``.

Assistant turns are role ``model``; assistant tool calls become ``function_call`` parts and tool turns
``function_response`` parts (named after the call they answer, which Gemini requires) in a user turn. Consecutive
turns of one role are merged. data: URL images become inline bytes; other URLs become ``file_data`` references.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
from typing import Any

from google.genai import types

from domain.catalog import ModelSpec
from domain.chat import ChatRequest, ContentPart, Message
from domain.errors import ValidationError

__all__ = ["generation_config", "to_contents"]


def _text(content: str | list[ContentPart]) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.text or "" for part in content if part.type == "text")


def _image(part: ContentPart) -> types.Part:
    url = part.image_url or ""
    if url.startswith("data:"):
        header, sep, data = url.partition(",")
        if not sep or ";base64" not in header:
            raise ValidationError("messages.content.image_url", "a data: URL image must be base64-encoded")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationError("messages.content.image_url", "the data: URL is not valid base64") from exc
        media_type = part.media_type or header[len("data:") :].split(";", 1)[0] or "image/png"
        return types.Part(inline_data=types.Blob(mime_type=media_type, data=raw))
    if not url:
        raise ValidationError("messages.content.image_url", "an image part needs an image_url")
    media_type = part.media_type or mimetypes.guess_type(url)[0] or "image/jpeg"
    return types.Part(file_data=types.FileData(file_uri=url, mime_type=media_type))


def _parts(message: Message, call_names: dict[str, str]) -> list[types.Part]:
    if message.role == "tool":
        call_id = message.tool_call_id or ""
        name = message.name or call_names.get(call_id, "")
        response = types.FunctionResponse(id=call_id or None, name=name, response={"result": _text(message.content)})
        return [types.Part(function_response=response)]
    if isinstance(message.content, str):
        parts = [types.Part(text=message.content)] if message.content else []
    else:
        parts = [types.Part(text=p.text or "") if p.type == "text" else _image(p) for p in message.content]
    for call in message.tool_calls:
        try:
            args = json.loads(call.arguments or "{}")
        except (ValueError, RecursionError) as exc:  # RecursionError: nested past the decoder's depth (a 500 else)
            raise ValidationError(
                "messages.tool_calls.arguments", f"call {call.id!r} has invalid or too deeply nested JSON"
            ) from exc
        call_names[call.id] = call.name
        parts.append(types.Part(function_call=types.FunctionCall(id=call.id, name=call.name, args=args)))
    return parts


def to_contents(messages: list[Message]) -> list[types.Content]:
    """The conversation without its system turns (those go to ``system_instruction``)."""
    contents: list[types.Content] = []
    call_names: dict[str, str] = {}
    for message in messages:
        if message.role == "system":
            continue
        role = "model" if message.role == "assistant" else "user"
        parts = _parts(message, call_names)
        if contents and contents[-1].role == role:
            contents[-1].parts = [*(contents[-1].parts or []), *parts]
        else:
            contents.append(types.Content(role=role, parts=parts))
    return contents


def generation_config(request: ChatRequest, model: ModelSpec) -> types.GenerateContentConfig:
    """System instruction, sampling, tools, tool choice and structured output, over the catalog's defaults."""
    system = [request.system] if request.system else []
    system += [_text(m.content) for m in request.messages if m.role == "system"]
    options: dict[str, Any] = {
        "system_instruction": "\n\n".join(system) or None,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_output_tokens": request.max_tokens,
        "stop_sequences": request.stop or None,
    }
    if request.tools:
        declarations = [
            types.FunctionDeclaration(name=t.name, description=t.description, parameters_json_schema=t.parameters)
            for t in request.tools
        ]
        options["tools"] = [types.Tool(function_declarations=declarations)]
    choice = request.tool_choice
    if choice is not None:
        mode = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}[choice.mode]
        allowed = [choice.name] if choice.mode == "tool" and choice.name else None
        calling = types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode(mode), allowed_function_names=allowed
        )
        options["tool_config"] = types.ToolConfig(function_calling_config=calling)
    fmt = request.response_format
    if fmt is not None and fmt.type != "text":
        options["response_mime_type"] = "application/json"
        if fmt.type == "json_schema" and fmt.json_schema:
            options["response_json_schema"] = fmt.json_schema
    aliases = {"max_output_tokens": "max_tokens", "stop_sequences": "stop", "response_json_schema": "response_format"}
    unsupported = model.unsupported_params
    config = {k: v for k, v in model.default_params.items() if k not in unsupported}
    for key, value in options.items():
        if value is not None and key not in unsupported and aliases.get(key) not in unsupported:
            config[key] = value
    return types.GenerateContentConfig(**config)
