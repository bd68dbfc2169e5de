"""Chat through the StreamingManager: start names the stream and the serving model, one terminal event, no repeats."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from domain.catalog import ModelSpec
from domain.chat import ChatRequest, Message, TextDelta, ToolCallDelta, ToolCallEnd, ToolCallStart
from domain.errors import NotFoundError, ProviderError, RateLimitError
from domain.streaming import StreamEvent
from domain.types import CustomerId
from ports.metrics import NullMetrics
from services.attempts import RetryPolicy
from services.chat import ChatCaller, ChatService
from services.registry import ProviderRegistry
from services.streaming.manager import StreamingManager
from tests.fakes.clock import no_sleep
from tests.fakes.providers import make_chat_service, text_vendors
from tests.fakes.text import Script, ScriptedTextProvider, answer
from tests.fakes.usage import InMemoryUsageLedger

ALICE = CustomerId("alice")
CATALOG = [
    ModelSpec("main", "scripted", frozenset({"text", "tools"}), fallbacks=("backup/spare",)),
    ModelSpec("spare", "backup", frozenset({"text", "tools"})),
]


def service(manager: StreamingManager, primary: Sequence[Script], backup: Sequence[Script] = ()) -> ChatService:
    providers = {
        "scripted": ScriptedTextProvider(*primary, name="scripted"),
        "backup": ScriptedTextProvider(*(backup or [answer("backup")]), name="backup"),
    }
    registry = ProviderRegistry(CATALOG, text_vendors(providers))
    return make_chat_service(registry, manager, InMemoryUsageLedger(), NullMetrics(), RetryPolicy(), sleep=no_sleep)


async def stream(chat: ChatService, manager: StreamingManager, **kwargs: object) -> list[StreamEvent]:
    request = ChatRequest("scripted/main", [Message("user", "hi")], stream=True, **kwargs)  # type: ignore[arg-type]
    stream_id = await chat.start_stream(request, ChatCaller(ALICE, "req"))
    return [event async for event in manager.subscribe(stream_id, owner=ALICE)]


def texts(events: Sequence[StreamEvent]) -> list[object]:
    return [e.payload["text"] for e in events if e.type == "text"]


async def test_stream_starts_with_its_id_and_ends_with_done(manager: StreamingManager) -> None:
    """start carries the stream id and serving model; text follows; done ends it with usage and finish reason."""
    events = await stream(service(manager, [answer("Hel", "lo")]), manager)
    assert [e.type for e in events] == ["start", "text", "text", "usage", "done"]
    assert events[0].payload["stream_id"] == events[0].stream_id
    assert events[0].payload["model"] == "scripted/main"
    assert texts(events) == ["Hel", "lo"]
    assert events[-1].payload["finish_reason"] == "stop"
    assert "text" not in events[-1].payload


async def test_429_then_success_streams_the_text_once(manager: StreamingManager) -> None:
    """A retried 429 is invisible to the client: one start, the text once, done."""
    events = await stream(service(manager, [[RateLimitError("busy", retry_after=0)], answer("once")]), manager)
    assert [e.type for e in events] == ["start", "text", "usage", "done"]
    assert texts(events) == ["once"]
    assert events[0].payload["retries"] == 1


async def test_mid_stream_failure_is_one_error_event_without_repeats(manager: StreamingManager) -> None:
    """After content, a failure ends the stream with exactly one error event; nothing is resent or retried."""
    script: Script = [TextDelta("partial"), ProviderError("scripted", "broke", retryable=True)]
    events = await stream(service(manager, [script, answer("again")]), manager)
    assert [e.type for e in events] == ["start", "text", "error"]
    assert texts(events) == ["partial"]
    assert events[-1].payload["code"] == "provider_error"


async def test_fallback_before_content_is_named_in_start(manager: StreamingManager) -> None:
    """The catalog fallback serves after the primary fails before content; start says so."""
    events = await stream(service(manager, [[ProviderError("scripted", "down")]], [answer("b")]), manager)
    assert events[0].payload["model"] == "backup/spare"
    assert events[0].payload["fallback_used"] == "backup/spare"
    assert events[-1].type == "done"


async def test_streamed_tool_calls_keep_their_index(manager: StreamingManager) -> None:
    """tool_call events carry phase, index and id so parallel calls never mix."""
    script: Script = [
        ToolCallStart(0, "a", "one"),
        ToolCallStart(1, "b", "two"),
        ToolCallDelta(1, "b", "{}"),
        ToolCallDelta(0, "a", "{}"),
        ToolCallEnd(0, "a"),
        ToolCallEnd(1, "b"),
    ]
    events = await stream(service(manager, [script]), manager)
    calls = [(e.payload["phase"], e.payload["index"], e.payload["id"]) for e in events if e.type == "tool_call"]
    assert calls == [
        ("start", 0, "a"),
        ("start", 1, "b"),
        ("delta", 1, "b"),
        ("delta", 0, "a"),
        ("end", 0, "a"),
        ("end", 1, "b"),
    ]
    assert events[-1].payload["finish_reason"] == "tool_calls"


async def test_unknown_model_fails_before_any_stream_exists(manager: StreamingManager) -> None:
    """Resolution errors surface from start_stream itself (an HTTP 404), not as a stream event."""
    chat = service(manager, [answer("x")])
    with pytest.raises(NotFoundError):
        await chat.start_stream(ChatRequest("nope", [Message("user", "x")], stream=True), ChatCaller(ALICE, "r"))
    assert manager.active_streams == 0
