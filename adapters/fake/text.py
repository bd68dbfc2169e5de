"""Driven adapter: ``FakeTextProvider``, a deterministic TextProvider configured by the model id and request metadata.

Modes (the catalog entry's id, or ``fake_mode`` in ``default_params``/``metadata``): ``echo`` repeats the last user
text, ``fixed`` answers ``fake_text``, ``slow`` echoes with ``fake_delay_ms`` between chunks, ``failing`` raises
``fake_error`` after ``fake_fail_after`` chunks, ``unreliable`` is always overloaded before content, ``tools`` calls
the offered tools (two in parallel, argument deltas interleaved), ``reasoning`` thinks aloud before echoing.
Any mode fails when ``fake_error`` is set; ``fake_fail_times = N`` fails only the first N calls with the same
``fake_key`` (default: model and last user text), which scripts "429, then success" through the real stack.
``fake_finish`` sets the finish reason (e.g. ``content_filter``); in ``tools`` mode ``fake_text`` is said before the
calls. ``fake_hang_after = N`` makes the vendor go silent for good after N chunks (0: before any), the silent-vendor
case the chat service's ``idle_timeout_s`` bounds.
Chunks are words; usage counts words, so every figure is predictable. ``complete`` (the non-streamed call) plays the
same script and returns the answer it adds up to: a fault anywhere in it fails the whole call, and a silence is a
call that never answers, as with a vendor's non-streaming endpoint.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, cast, get_args

from adapters.kit.stream import assemble
from domain.catalog import ModelSpec
from domain.chat import (
    ChatRequest,
    Finish,
    FinishReason,
    Message,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
    Usage,
    UsageReport,
)
from domain.completion import Completion
from domain.errors import (
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServiceError,
    ValidationError,
)

__all__ = ["FAKE_ERRORS", "FakeTextProvider"]

_WORDS: Final = re.compile(r"\s*\S+")
DEFAULT_TEXT: Final = "Hello from Switchyard."


def _error(kind: str, retry_after: float | None) -> ServiceError:
    if kind == "rate_limited":
        return RateLimitError("fake: rate limited by the vendor", retry_after=retry_after, context={"provider": "fake"})
    if kind == "provider_error":
        return ProviderError("fake", "fake: the vendor failed")
    if kind == "overloaded":
        return ProviderError("fake", "fake: the vendor is overloaded", retryable=True, context={"status": 529})
    if kind == "timeout":
        return ProviderTimeoutError("fake")
    if kind == "auth":
        return ProviderError("fake", "fake: the vendor rejected our credentials")
    if kind == "context_length":
        return ValidationError("messages", "fake: the conversation exceeds the model's context window")
    raise ValidationError("metadata.fake_error", f"unknown fake error {kind!r}; known: {', '.join(FAKE_ERRORS)}")


FAKE_ERRORS: Final = ("rate_limited", "provider_error", "overloaded", "timeout", "auth", "context_length")


def _text_of(message: Message) -> str:
    if isinstance(message.content, str):
        return message.content
    return " ".join(part.text or "" for part in message.content if part.type == "text")


def _last_user_text(request: ChatRequest) -> str:
    return next((_text_of(m) for m in reversed(request.messages) if m.role == "user"), "")


def _count_words(request: ChatRequest) -> int:
    texts = [request.system or "", *(_text_of(m) for m in request.messages)]
    return sum(len(t.split()) for t in texts)


class FakeTextProvider:
    """The ``fake`` vendor. ``sleep`` is injectable so slow streams cost nothing in unit tests."""

    def __init__(self, name: str = "fake", *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._name = name
        self._sleep = sleep
        self._failures: dict[str, int] = {}
        self.calls = 0

    @property
    def name(self) -> str:
        return self._name

    async def aclose(self) -> None:
        return None

    def stream(self, request: ChatRequest, model: ModelSpec) -> AsyncIterator[ProviderEvent]:
        return self._stream(request, model)

    async def complete(self, request: ChatRequest, model: ModelSpec, *, timeout_s: float | None = None) -> Completion:
        del timeout_s  # nothing to time out: the attempt runner bounds the call (a scripted silence included)
        return await assemble(self._stream(request, model))

    def _option(self, request: ChatRequest, model: ModelSpec, key: str, default: Any = None) -> Any:
        if key in request.metadata:
            return request.metadata[key]
        return model.default_params.get(key, default)

    def _should_fail(self, request: ChatRequest, model: ModelSpec) -> str | None:
        mode = str(self._option(request, model, "fake_mode", model.id))
        kind = self._option(request, model, "fake_error")
        if kind is None and mode == "failing":
            kind = "provider_error"
        if kind is None and mode == "unreliable":
            kind = "overloaded"
        if kind is None:
            return None
        times = self._option(request, model, "fake_fail_times")
        if times is not None:
            key = str(self._option(request, model, "fake_key", f"{model.qualified_id}:{_last_user_text(request)}"))
            seen = self._failures.get(key, 0)
            self._failures[key] = seen + 1
            if seen >= int(times):
                return None
        return str(kind)

    async def _stream(self, request: ChatRequest, model: ModelSpec) -> AsyncIterator[ProviderEvent]:
        self.calls += 1
        mode = str(self._option(request, model, "fake_mode", model.id))
        failure = self._should_fail(request, model)
        fail_after = int(self._option(request, model, "fake_fail_after", 0)) if failure else -1
        retry_after_raw = self._option(request, model, "fake_retry_after")
        retry_after = float(retry_after_raw) if retry_after_raw is not None else None
        delay = float(self._option(request, model, "fake_delay_ms", 0)) / 1000.0
        hang_raw = self._option(request, model, "fake_hang_after")
        hang_after = int(hang_raw) if hang_raw is not None else -1
        if fail_after == 0 and failure is not None:
            raise _error(failure, retry_after)
        if hang_after == 0:
            await _silence()

        if mode == "tools" and (calls := _planned_calls(request)):
            preface = _WORDS.findall(str(self._option(request, model, "fake_text", "")))
            for word in preface:  # text before the calls, as vendors sometimes do
                yield TextDelta(word)
            for event in _tool_call_events(calls, _last_user_text(request)):
                yield event
            yield UsageReport(Usage(input_tokens=_count_words(request), output_tokens=len(preface) + 4 * len(calls)))
            yield Finish("tool_calls")
            return

        reasoning_words: list[str] = []
        if mode == "reasoning":
            reasoning_words = _WORDS.findall(f"Thinking about: {_last_user_text(request)}")
            for word in reasoning_words:
                yield ReasoningDelta(word)
        words = _WORDS.findall(self._answer(request, model, mode))
        finish: FinishReason = _finish_option(self._option(request, model, "fake_finish", "stop"))
        if request.max_tokens is not None and len(words) > request.max_tokens:
            words, finish = words[: request.max_tokens], "length"
        for sent, word in enumerate(words):
            if failure is not None and sent == fail_after:
                raise _error(failure, retry_after)
            if sent and sent == hang_after:
                await _silence()
            if delay and sent:
                await self._sleep(delay)
            yield TextDelta(word)
        if failure is not None:  # fail_after beyond the answer's length: fail at the end, content already out
            raise _error(failure, retry_after)
        yield UsageReport(
            Usage(
                input_tokens=_count_words(request),
                output_tokens=len(words) + len(reasoning_words),
                reasoning_tokens=len(reasoning_words),
            )
        )
        yield Finish(finish)

    def _answer(self, request: ChatRequest, model: ModelSpec, mode: str) -> str:
        if request.messages and request.messages[-1].role == "tool":
            results = [_text_of(m) for m in request.messages if m.role == "tool"]
            return f"Tool results: {'; '.join(results)}"
        if mode in ("fixed", "failing"):
            return str(self._option(request, model, "fake_text", DEFAULT_TEXT))
        if mode == "tools":
            return "No tools were offered."
        text = str(self._option(request, model, "fake_text", _last_user_text(request)))
        fmt = request.response_format
        if fmt is not None and fmt.type != "text":
            return json.dumps({"echo": text})
        return text


async def _silence() -> None:
    """A vendor that holds the connection open and sends nothing, until the caller gives up (cancels)."""
    await asyncio.get_running_loop().create_future()


def _finish_option(value: object) -> FinishReason:
    for reason in get_args(FinishReason):
        if value == reason:
            return cast(FinishReason, reason)
    raise ValidationError("metadata.fake_finish", f"unknown finish reason {value!r}")


def _planned_calls(request: ChatRequest) -> list[ToolSpec]:
    choice = request.tool_choice
    if not request.tools or (choice is not None and choice.mode == "none"):
        return []
    if request.messages and request.messages[-1].role == "tool":
        return []  # the tools already answered: the model replies in text
    if choice is not None and choice.mode == "tool":
        return [t for t in request.tools if t.name == choice.name][:1]
    return list(request.tools[:2])


def _tool_call_events(calls: list[ToolSpec], query: str) -> list[ProviderEvent]:
    """Start every call, then interleave the halves of their argument JSON, then end them: the parallel case."""
    ids = [f"call_fake_{index}" for index in range(len(calls))]
    arguments = [json.dumps({"query": query, "tool": tool.name}) for tool in calls]
    events: list[ProviderEvent] = [ToolCallStart(i, ids[i], tool.name) for i, tool in enumerate(calls)]
    halves = [(args[: len(args) // 2], args[len(args) // 2 :]) for args in arguments]
    for part in (0, 1):
        events.extend(ToolCallDelta(i, ids[i], halves[i][part]) for i in range(len(calls)))
    events.extend(ToolCallEnd(i, ids[i]) for i in range(len(calls)))
    return events
