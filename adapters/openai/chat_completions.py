"""Driven adapter (OpenAI): the Chat Completions dialect, shared by OpenAI and every OpenAI-compatible vendor.

``chat_params`` turns a ``ChatRequest`` into the request body; ``ChatStreamNormalizer`` turns the chunk stream into
normalized events, ``chat_completion`` a non-streamed ``chat.completion`` into the same answer. Both read the JSON
objects as parsed (no SDK model per chunk; see ``adapters.openai.client.post``). Chat Completions never
says when a tool call ends, so every open call is closed (``ToolCallEnd``) once the choice finishes; calls are keyed
by the vendor's ``index``, and a new ``id`` arriving on an index already in use (some compatible servers put every
call at index 0) opens a new call instead of corrupting the first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from adapters.kit.stream import dig, json_body
from adapters.openai.options import base_options, image_url, text_of
from domain.catalog import ModelSpec
from domain.chat import (
    ChatRequest,
    Finish,
    FinishReason,
    Message,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
)
from domain.completion import Completion

__all__ = ["ChatStreamNormalizer", "chat_completion", "chat_params"]

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def _message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": text_of(message.content)}
    if isinstance(message.content, str):
        content: Any = message.content
    else:
        content = [
            {"type": "text", "text": part.text or ""}
            if part.type == "text"
            else {"type": "image_url", "image_url": {"url": image_url(part)}}
            for part in message.content
        ]
    out: dict[str, Any] = {"role": message.role, "content": content}
    if message.role == "assistant" and message.tool_calls:
        out["content"] = text_of(message.content) or None
        out["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
    if message.name and message.role in ("user", "assistant"):
        out["name"] = message.name
    return out


def chat_params(request: ChatRequest, model: ModelSpec, *, provider: str, stream: bool = True) -> dict[str, Any]:
    """The body of ``POST /chat/completions`` (what ``chat.completions.create`` would send). OpenAI itself gets
    ``max_completion_tokens``, the compatible family the older ``max_tokens`` most of them still expect.
    ``stream_options`` goes with a stream only: OpenAI refuses it (400) on a call without ``stream``."""
    messages = [{"role": "system", "content": request.system}] if request.system else []
    messages += [_message(m) for m in request.messages]
    options: dict[str, Any] = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_completion_tokens" if provider == "openai" else "max_tokens": request.max_tokens,
        "stop": request.stop or None,
        "stream_options": {"include_usage": True} if stream else None,
    }
    if request.tools:
        options["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in request.tools
        ]
    if request.tool_choice is not None:
        choice = request.tool_choice
        options["tool_choice"] = (
            {"type": "function", "function": {"name": choice.name}} if choice.mode == "tool" else choice.mode
        )
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_object":
        options["response_format"] = {"type": "json_object"}
    elif fmt is not None and fmt.type == "json_schema":
        schema = {"name": fmt.name or "response", "schema": fmt.json_schema or {}, "strict": True}
        options["response_format"] = {"type": "json_schema", "json_schema": schema}
    return {"model": model.wire_name, "messages": messages, "stream": stream, **base_options(options, model)}


class ChatStreamNormalizer:
    """Feed chunks in order with ``feed``; call ``finish`` at the end of the stream."""

    def __init__(self) -> None:
        self._ids: dict[int, str] = {}  # vendor index -> call id
        self._positions: dict[int, int] = {}  # vendor index -> normalized index
        self._order: list[tuple[int, str]] = []  # (normalized index, id) in start order
        self._finish: str | None = None
        self._usage: Usage | None = None

    def feed(self, chunk: Any) -> Iterator[ProviderEvent]:
        """Events for one ``chat.completion.chunk`` object, as parsed from its SSE line."""
        usage = chunk.get("usage")
        if usage is not None:
            self._usage = _usage(usage)
        for choice in (chunk.get("choices") or [])[:1]:
            delta = choice.get("delta")
            if delta is not None:
                # The compatible family's reasoning (DeepSeek, vLLM ...): not a field of OpenAI's own chunk.
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                if isinstance(reasoning, str) and reasoning:
                    yield ReasoningDelta(reasoning)
                content = delta.get("content")
                if content:
                    yield TextDelta(content)
                for call in delta.get("tool_calls") or ():
                    yield from self._tool_call(call)
            finish = choice.get("finish_reason")
            if finish:
                self._finish = finish

    def _tool_call(self, call: Any) -> Iterator[ProviderEvent]:
        index, call_id, function = call.get("index"), call.get("id"), call.get("function")
        vendor_index = index if index is not None else len(self._order)
        known = self._ids.get(vendor_index)
        if known is None or (call_id and call_id != known):
            position = len(self._order)
            call_id = call_id or f"call_{position}"
            self._ids[vendor_index] = call_id
            self._positions[vendor_index] = position
            self._order.append((position, call_id))
            yield ToolCallStart(position, call_id, (function.get("name") if function else None) or "")
        arguments = function.get("arguments") if function else None
        if arguments:
            yield ToolCallDelta(self._positions[vendor_index], self._ids[vendor_index], arguments)

    @property
    def finished(self) -> bool:
        """A finish reason arrived."""
        return self._finish is not None

    def finish(self) -> Iterator[ProviderEvent]:
        """Close open tool calls, report usage, then the one ``Finish``."""
        for position, call_id in self._order:
            yield ToolCallEnd(position, call_id)
        if self._usage is not None:
            yield UsageReport(self._usage)
        reason = _FINISH.get(self._finish or "stop", "stop")
        yield Finish("tool_calls" if self._order and reason == "stop" else reason)


def chat_completion(reply: Any) -> Completion:
    """The answer of a non-streamed ``chat.completion`` object, normalized exactly as ``ChatStreamNormalizer``
    normalizes the same answer streamed (reasoning from the compatible family's ``reasoning_content``/``reasoning``,
    a call without an id numbered by position, ``tool_calls`` when calls end a turn the vendor says ``stop`` to)."""
    reply = json_body(reply)
    text, reasoning, finish = "", "", None
    calls: tuple[ToolCall, ...] = ()
    for choice in (reply.get("choices") or [])[:1]:
        message = choice.get("message")
        if message is not None:
            thought = message.get("reasoning_content") or message.get("reasoning")
            reasoning = thought if isinstance(thought, str) else ""
            text = message.get("content") or ""
            calls = tuple(_call(position, call) for position, call in enumerate(message.get("tool_calls") or ()))
        finish = choice.get("finish_reason")
    reason = _FINISH.get(finish or "stop", "stop")
    usage = reply.get("usage")
    finish_reason: FinishReason = "tool_calls" if calls and reason == "stop" else reason
    return Completion(text, reasoning, calls, finish_reason, _usage(usage) if usage is not None else None)


def _call(position: int, call: Any) -> ToolCall:
    function = call.get("function")  # a custom (non-function) tool call has none
    name = dig(function, "name") or ""
    return ToolCall(call.get("id") or f"call_{position}", name, dig(function, "arguments") or "{}")


def _usage(raw: Any) -> Usage:
    return Usage(
        input_tokens=raw.get("prompt_tokens") or 0,
        output_tokens=raw.get("completion_tokens") or 0,
        cached_tokens=dig(raw, "prompt_tokens_details", "cached_tokens") or 0,
        reasoning_tokens=dig(raw, "completion_tokens_details", "reasoning_tokens") or 0,
    )
