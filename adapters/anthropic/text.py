"""Driven adapter: Anthropic Messages implementation of the ``TextProvider`` port.

Streams raw Messages events (``messages.create(stream=True)``) and normalizes them: thinking blocks become
``ReasoningDelta``, ``tool_use`` blocks become a tool call (start at ``content_block_start``, one delta per
``input_json_delta``, end at ``content_block_stop``), and usage is reported in normalized terms (input includes cache
reads and writes). ``complete`` calls without streaming and reads the ``Message`` into the same answer, except where
Anthropic requires a stream (``max_tokens`` implying over ten minutes): that call is streamed and assembled. One
attempt per call: SDK retries are off (``max_retries=0``). Requests go through the SDK client's ``post``
(``adapters.anthropic.client.post``), and events and messages are read as the JSON objects the SDK parsed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import Any, Final

import anthropic
import httpx2
from anthropic import AsyncAnthropic

from adapters.anthropic.client import MESSAGES, anthropic_client, post
from adapters.anthropic.errors import TRANSPORT_ERRORS, map_anthropic_error
from adapters.anthropic.messages import messages_params
from adapters.kit.stream import MALFORMED, assemble, call_once, dig, drive, json_body
from domain.catalog import ModelSpec
from domain.chat import (
    ChatRequest,
    Finish,
    FinishReason,
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

try:  # the SDK's per-model caps on a non-streamed max_tokens (a private table; none when it moves)
    from anthropic._constants import MODEL_NONSTREAMING_TOKENS
except ImportError:  # pragma: no cover - depends on the SDK version
    MODEL_NONSTREAMING_TOKENS = {}

__all__ = [
    "NONSTREAMING_MAX_TOKENS",
    "AnthropicStreamNormalizer",
    "AnthropicTextProvider",
    "build_anthropic_text_provider",
    "message_completion",
]

_VENDOR_FAILURES: tuple[type[Exception], ...] = (anthropic.AnthropicError, *TRANSPORT_ERRORS, *MALFORMED)
_STOP: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


#: Anthropic wants a stream for a call that may run past ten minutes, which its SDK reckons at 128,000 output tokens an
#: hour (``_calculate_nonstreaming_timeout``): past this ``max_tokens`` a non-streamed call is refused by the SDK under
#: its default timeout and may be cut by idle-connection limits on the way. Such a call is streamed and assembled.
NONSTREAMING_MAX_TOKENS: Final = 128_000 * 600 // 3600


def _must_stream(params: dict[str, Any]) -> bool:
    max_tokens = params.get("max_tokens")
    if not isinstance(max_tokens, int):
        return False
    cap = MODEL_NONSTREAMING_TOKENS.get(str(params.get("model")))
    return max_tokens > NONSTREAMING_MAX_TOKENS or (cap is not None and max_tokens > cap)


def message_completion(message: Any) -> Completion:
    """A non-streamed ``message`` object as the answer ``AnthropicStreamNormalizer`` makes of the same message
    streamed: text and thinking blocks, ``tool_use`` blocks as calls (their ``input`` as JSON), normalized usage."""
    message = json_body(message)
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    for block in message.get("content") or ():
        match block.get("type"):
            case "text":
                text.append(block.get("text") or "")
            case "thinking":
                reasoning.append(block.get("thinking") or "")
            case "tool_use":
                arguments = block.get("input")
                calls.append(
                    ToolCall(block.get("id"), block.get("name"), json.dumps({} if arguments is None else arguments))
                )
            case _:
                continue
    usage = message["usage"]
    cached = _cached(usage)
    normalized = Usage((usage.get("input_tokens") or 0) + cached, usage.get("output_tokens") or 0, cached)
    reason = _STOP.get(message.get("stop_reason") or "end_turn", "stop")
    finish: FinishReason = "tool_calls" if calls and reason == "stop" else reason
    return Completion("".join(text), "".join(reasoning), tuple(calls), finish, normalized)


def _cached(usage: Any) -> int:
    """Prompt tokens read from or written to the cache: Anthropic counts them apart from ``input_tokens``."""
    return (dig(usage, "cache_read_input_tokens") or 0) + (dig(usage, "cache_creation_input_tokens") or 0)


class AnthropicStreamNormalizer:
    """Feed stream event objects in order with ``feed``; call ``finish`` once ``finished``."""

    def __init__(self) -> None:
        self._calls: dict[int, tuple[int, str]] = {}  # content block index -> (normalized index, call id)
        self._with_arguments: set[int] = set()
        self._input = Usage()
        self._output_tokens = 0
        self._stop_reason: str | None = None
        self.finished = False

    def feed(self, event: Any) -> Iterator[ProviderEvent]:
        """Events for one Messages stream event."""
        match event.get("type"):
            case "content_block_delta":
                yield from self._delta(event.get("index"), event["delta"])
            case "message_start":
                usage = event["message"]["usage"]
                cached = _cached(usage)
                self._input = Usage(input_tokens=(usage.get("input_tokens") or 0) + cached, cached_tokens=cached)
                self._output_tokens = usage.get("output_tokens") or 0
            case "content_block_start":
                block = event["content_block"]
                kind = block.get("type")
                if kind == "tool_use":
                    position = len(self._calls)
                    self._calls[event.get("index")] = (position, block.get("id"))
                    yield ToolCallStart(position, block.get("id"), block.get("name"))
                elif kind == "text" and (text := block.get("text")):
                    yield TextDelta(text)
                elif kind == "thinking" and (thinking := block.get("thinking")):
                    yield ReasoningDelta(thinking)
            case "content_block_stop" if event.get("index") in self._calls:
                index = event.get("index")
                position, call_id = self._calls[index]
                if index not in self._with_arguments:  # a call without arguments still gets valid JSON
                    yield ToolCallDelta(position, call_id, "{}")
                yield ToolCallEnd(position, call_id)
            case "message_delta":
                self._stop_reason = event["delta"].get("stop_reason") or self._stop_reason
                output_tokens = dig(event, "usage", "output_tokens")
                if output_tokens is not None:
                    self._output_tokens = output_tokens
            case "message_stop":
                self.finished = True
            case _:
                return

    def _delta(self, index: Any, delta: Any) -> Iterator[ProviderEvent]:
        match delta.get("type"):
            case "text_delta":
                if text := delta.get("text"):
                    yield TextDelta(text)
            case "thinking_delta":
                if thinking := delta.get("thinking"):
                    yield ReasoningDelta(thinking)
            case "input_json_delta" if index in self._calls:
                if partial_json := delta.get("partial_json"):
                    self._with_arguments.add(index)
                    position, call_id = self._calls[index]
                    yield ToolCallDelta(position, call_id, partial_json)
            case _:
                return

    def finish(self) -> Iterator[ProviderEvent]:
        """Usage, then the one ``Finish``."""
        yield UsageReport(
            Usage(
                input_tokens=self._input.input_tokens,
                output_tokens=self._output_tokens,
                cached_tokens=self._input.cached_tokens,
            )
        )
        reason = _STOP.get(self._stop_reason or "end_turn", "stop")
        yield Finish("tool_calls" if self._calls and reason == "stop" else reason)


class AnthropicTextProvider:
    """``TextProvider`` over one ``AsyncAnthropic`` client (created once, closed by ``aclose``)."""

    def __init__(self, client: AsyncAnthropic, *, name: str = "anthropic") -> None:
        self._client = client
        self._name = name
        self._drive = partial(drive, provider=name, map_error=map_anthropic_error, vendor_failures=_VENDOR_FAILURES)
        self._call = partial(call_once, provider=name, map_error=map_anthropic_error, vendor_failures=_VENDOR_FAILURES)

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    def stream(self, request: ChatRequest, model: ModelSpec) -> AsyncIterator[ProviderEvent]:
        """One streamed attempt of ``request`` against ``model``."""
        return self._drive(
            lambda: post(self._client, MESSAGES, messages_params(request, model), stream=True),
            AnthropicStreamNormalizer(),
            unfinished_message=f"{self._name} ended the stream before message_stop",
        )

    async def complete(self, request: ChatRequest, model: ModelSpec, *, timeout_s: float | None = None) -> Completion:
        """One attempt without streaming (streamed and assembled where Anthropic requires a stream)."""
        params = messages_params(request, model, stream=False)
        if _must_stream(params):
            return await assemble(self.stream(request, model))
        timeout = None
        if timeout_s is not None:
            configured = self._client.timeout
            timeout = httpx2.Timeout(
                timeout_s, connect=configured.connect if isinstance(configured, httpx2.Timeout) else None
            )
        return await self._call(
            lambda: post(self._client, MESSAGES, params, stream=False, timeout=timeout), message_completion
        )

    async def aclose(self) -> None:
        """Close the SDK client and its connection pool."""
        await self._client.close()


def build_anthropic_text_provider(
    *, name: str, api_key: str, base_url: str | None, timeout_s: float, connect_timeout_s: float
) -> AnthropicTextProvider:
    """The container's factory: one client for ``name`` at ``base_url`` (Anthropic's own when ``None``)."""
    client = anthropic_client(
        api_key=api_key, base_url=base_url, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s
    )
    return AnthropicTextProvider(client, name=name)
