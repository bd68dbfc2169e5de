"""Driven adapter (OpenAI): the Responses API dialect.

``responses_params`` turns a ``ChatRequest`` into ``responses.create`` arguments (system text becomes
``instructions``; assistant tool calls and tool results become ``function_call`` / ``function_call_output`` items).
``ResponsesStreamNormalizer`` maps the typed events: function calls are keyed by their output item id, so the argument
deltas of parallel calls land on the right call even when interleaved. ``ResponsesAnswer`` reads a non-streamed
``response`` object into the same answer. Both read the JSON objects as parsed (no SDK model per event).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from adapters.kit.stream import dig, json_body
from adapters.openai.errors import stream_error
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

__all__ = ["ResponsesAnswer", "ResponsesStreamNormalizer", "responses_params"]


def _items(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        output = text_of(message.content)
        return [{"type": "function_call_output", "call_id": message.tool_call_id or "", "output": output}]
    items: list[dict[str, Any]] = []
    if isinstance(message.content, list):
        text_type = "output_text" if message.role == "assistant" else "input_text"
        parts = [
            {"type": text_type, "text": part.text or ""}
            if part.type == "text"
            else {"type": "input_image", "image_url": image_url(part)}
            for part in message.content
        ]
        if parts:
            items.append({"role": message.role, "content": parts})
    elif message.content or not message.tool_calls:
        items.append({"role": message.role, "content": message.content})
    items += [
        {"type": "function_call", "call_id": call.id, "name": call.name, "arguments": call.arguments}
        for call in message.tool_calls
    ]
    return items


def responses_params(request: ChatRequest, model: ModelSpec, *, stream: bool = True) -> dict[str, Any]:
    """The body of ``POST /responses`` (what ``responses.create`` would send). ``stop`` has no Responses
    equivalent and is not sent; ``store`` is off unless the catalog's default params turn it on (we keep no
    conversation at the vendor)."""
    system = [request.system] if request.system else []
    system += [text_of(m.content) for m in request.messages if m.role == "system"]
    items = [item for m in request.messages if m.role != "system" for item in _items(m)]
    options: dict[str, Any] = {
        "instructions": "\n\n".join(system) or None,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_output_tokens": request.max_tokens,
        "store": model.default_params.get("store", False),
    }
    if request.tools:
        options["tools"] = [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
                "strict": False,
            }
            for t in request.tools
        ]
    if request.tool_choice is not None:
        choice = request.tool_choice
        options["tool_choice"] = {"type": "function", "name": choice.name} if choice.mode == "tool" else choice.mode
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_object":
        options["text"] = {"format": {"type": "json_object"}}
    elif fmt is not None and fmt.type == "json_schema":
        schema = {
            "type": "json_schema",
            "name": fmt.name or "response",
            "schema": fmt.json_schema or {},
            "strict": True,
        }
        options["text"] = {"format": schema}
    return {"model": model.wire_name, "input": items, "stream": stream, **base_options(options, model)}


class ResponsesStreamNormalizer:
    """Feed typed events in order with ``feed``; call ``finish`` once ``finished``."""

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._calls: dict[str, tuple[int, str]] = {}  # output item id -> (normalized index, call id)
        self._by_output_index: dict[int, str] = {}
        self._open: list[str] = []
        self._with_deltas: set[str] = set()
        self._status: str | None = None
        self._incomplete_reason: str | None = None
        self._usage: Usage | None = None
        self._refused = False

    @property
    def finished(self) -> bool:
        """``response.completed`` or ``response.incomplete`` arrived."""
        return self._status is not None

    def feed(self, event: Any) -> Iterator[ProviderEvent]:
        """Events for one stream event object; raises a domain error for ``error`` and ``response.failed``."""
        match event.get("type"):
            case "response.output_text.delta" | "response.refusal.delta" as kind:
                self._refused = self._refused or kind == "response.refusal.delta"
                if delta := event.get("delta"):
                    yield TextDelta(delta)
            case "response.reasoning_summary_text.delta" | "response.reasoning_text.delta":
                if delta := event.get("delta"):
                    yield ReasoningDelta(delta)
            case "response.output_item.added" if event["item"].get("type") == "function_call":
                yield from self._start(event["item"], event.get("output_index"))
            case "response.function_call_arguments.delta":
                item_id = event.get("item_id") or self._by_output_index.get(event.get("output_index"), "")
                delta = event.get("delta")
                if item_id in self._calls and delta:
                    self._with_deltas.add(item_id)
                    index, call_id = self._calls[item_id]
                    yield ToolCallDelta(index, call_id, delta)
            case "response.output_item.done" if event["item"].get("type") == "function_call":
                yield from self._end(event["item"], event.get("output_index"))
            case "response.completed" | "response.incomplete":
                response = event["response"]
                self._status = response.get("status") or "completed"
                self._incomplete_reason = dig(response, "incomplete_details", "reason")
                usage = response.get("usage")
                if usage is not None:
                    self._usage = _usage(usage)
            case "response.failed":
                error = event["response"].get("error")
                raise stream_error(self._provider, dig(error, "code"), dig(error, "message"))
            case "error":
                raise stream_error(self._provider, event.get("code"), event.get("message"))
            case _:
                return

    def _start(self, item: Any, output_index: Any) -> Iterator[ProviderEvent]:
        call_id = item.get("call_id")
        item_id = item.get("id") or call_id
        if item_id in self._calls:
            return
        index = len(self._calls)
        self._calls[item_id] = (index, call_id)
        self._by_output_index[output_index] = item_id
        self._open.append(item_id)
        yield ToolCallStart(index, call_id, item.get("name"))

    def _end(self, item: Any, output_index: Any) -> Iterator[ProviderEvent]:
        item_id = item.get("id") or item.get("call_id")
        yield from self._start(item, output_index)
        index, call_id = self._calls[item_id]
        arguments = item.get("arguments")
        if item_id not in self._with_deltas and arguments:  # a server that sent no deltas
            self._with_deltas.add(item_id)
            yield ToolCallDelta(index, call_id, arguments)
        if item_id in self._open:
            self._open.remove(item_id)
            yield ToolCallEnd(index, call_id)

    def finish(self) -> Iterator[ProviderEvent]:
        """Close calls left open, report usage, then the one ``Finish``."""
        for item_id in list(self._open):
            index, call_id = self._calls[item_id]
            yield ToolCallEnd(index, call_id)
        self._open.clear()
        if self._usage is not None:
            yield UsageReport(self._usage)
        yield Finish(self._reason())

    def _reason(self) -> FinishReason:
        if self._status == "incomplete":
            return "content_filter" if self._incomplete_reason == "content_filter" else "length"
        if self._refused:
            return "content_filter"
        return "tool_calls" if self._calls else "stop"


class ResponsesAnswer:
    """Reads a non-streamed ``response`` object as ``ResponsesStreamNormalizer`` reads the same response streamed:
    text and refusals as text (a refusal finishes ``content_filter``), reasoning summaries and texts as reasoning,
    function calls in output order, ``response.failed`` as the same domain error."""

    def __init__(self, provider: str) -> None:
        self._provider = provider

    def __call__(self, reply: Any) -> Completion:
        reply = json_body(reply)
        if reply.get("status") == "failed":
            error = reply.get("error")
            raise stream_error(self._provider, dig(error, "code"), dig(error, "message"))
        text: list[str] = []
        reasoning: list[str] = []
        calls: list[ToolCall] = []
        refused = False
        for item in reply.get("output") or ():
            match item.get("type"):
                case "message":
                    for part in item.get("content") or ():
                        refusal = part.get("type") == "refusal"
                        refused = refused or refusal
                        text.append(part.get("refusal" if refusal else "text") or "")
                case "reasoning":
                    reasoning += (piece.get("text") or "" for piece in item.get("summary") or ())
                    reasoning += (piece.get("text") or "" for piece in item.get("content") or ())
                case "function_call":
                    calls.append(ToolCall(item.get("call_id"), item.get("name"), item.get("arguments") or "{}"))
                case _:
                    continue
        usage = reply.get("usage")
        reason = self._reason(reply, refused, calls)
        return Completion(
            "".join(text), "".join(reasoning), tuple(calls), reason, None if usage is None else _usage(usage)
        )

    @staticmethod
    def _reason(reply: Any, refused: bool, calls: list[ToolCall]) -> FinishReason:
        if reply.get("status") == "incomplete":
            return "content_filter" if dig(reply, "incomplete_details", "reason") == "content_filter" else "length"
        if refused:
            return "content_filter"
        return "tool_calls" if calls else "stop"


def _usage(raw: Any) -> Usage:
    return Usage(
        input_tokens=raw.get("input_tokens") or 0,
        output_tokens=raw.get("output_tokens") or 0,
        cached_tokens=dig(raw, "input_tokens_details", "cached_tokens") or 0,
        reasoning_tokens=dig(raw, "output_tokens_details", "reasoning_tokens") or 0,
    )
