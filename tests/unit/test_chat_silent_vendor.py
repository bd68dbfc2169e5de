"""A silent vendor is one error, ``provider_timeout`` after ``idle_timeout_s``, whether the caller streams or not."""

from __future__ import annotations

import asyncio

import pytest

from adapters.memory.stream_log import InMemoryStreamLog
from domain.catalog import ModelSpec
from domain.chat import ChatRequest, Message, TextDelta
from domain.errors import ServiceError
from domain.streaming import StreamEvent
from domain.types import CustomerId
from ports.metrics import NullMetrics
from services.attempts import RetryPolicy
from services.chat import ChatCaller, ChatService
from services.registry import ProviderRegistry
from services.streaming.manager import StreamingManager
from services.streaming.runs import StreamingConfig
from tests.fakes.clock import no_sleep
from tests.fakes.providers import make_chat_service, text_vendors
from tests.fakes.text import HANG, Script, ScriptedTextProvider, answer
from tests.fakes.tokens import WordTokenCounter
from tests.fakes.usage import InMemoryUsageLedger

ALICE = CustomerId("alice")
CALLER = ChatCaller(ALICE, "req-silent")
CATALOG = [
    ModelSpec("main", "scripted", frozenset({"text"}), fallbacks=("backup/spare",)),
    ModelSpec("spare", "backup", frozenset({"text"})),
]
IDLE_S = 0.05
"""The vendor silence bound in these tests (the stall watchdog keeps its default of 120 s)."""


def _service(
    manager: StreamingManager, primary: Script, *then: Script, backup: Script = (), max_retries: int = 0
) -> tuple[ChatService, InMemoryUsageLedger]:
    providers = {
        "scripted": ScriptedTextProvider(primary, *then, name="scripted"),
        "backup": ScriptedTextProvider(backup or [HANG], name="backup"),
    }
    ledger = InMemoryUsageLedger()
    policy = RetryPolicy(max_retries=max_retries, idle_timeout_s=IDLE_S)
    chat = make_chat_service(
        ProviderRegistry(CATALOG, text_vendors(providers)),
        manager,
        ledger,
        NullMetrics(),
        policy,
        sleep=no_sleep,
        tokens=WordTokenCounter(),
    )
    return chat, ledger


def _ask(stream: bool) -> ChatRequest:
    return ChatRequest("scripted/main", [Message("user", "hello there")], stream=stream)


async def _outcome(chat: ChatService, manager: StreamingManager, *, stream: bool) -> str:
    """The error code that ends the request: the terminal ``error`` event, or the raised error (a generous bound
    turns a hang, the behaviour before the vendor timeout, into a failure)."""
    async with asyncio.timeout(10):
        if stream:
            stream_id = await chat.start_stream(_ask(True), CALLER)
            events: list[StreamEvent] = [e async for e in manager.subscribe(stream_id, owner=ALICE)]
            assert events[-1].type == "error", [e.type for e in events]
            return str(events[-1].payload["code"])
        with pytest.raises(ServiceError) as caught:
            await chat.complete(_ask(False), CALLER)
        return caught.value.code


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_a_vendor_silent_before_its_first_event_is_provider_timeout(
    manager: StreamingManager, stream: bool
) -> None:
    """A vendor that sends nothing ends the request with provider_timeout, streamed or not."""
    chat, ledger = _service(manager, [HANG])
    assert await _outcome(chat, manager, stream=stream) == "provider_timeout"
    assert [r.outcome for r in ledger.records] == ["provider_timeout", "provider_timeout"]  # primary, then fallback


async def test_a_vendor_going_silent_after_content_is_provider_timeout(manager: StreamingManager) -> None:
    """Silence after the first streamed chunk ends the stream with provider_timeout, with no retry or fallback."""
    chat, ledger = _service(manager, [TextDelta("partial "), HANG], answer("again"), backup=answer("spare"))
    assert await _outcome(chat, manager, stream=True) == "provider_timeout"
    [record] = ledger.records
    assert (record.outcome, record.output_tokens, record.estimated) == ("provider_timeout", 1, True)


async def test_a_non_streamed_call_going_silent_delivered_nothing_so_falls_back(manager: StreamingManager) -> None:
    """Without a stream the vendor is called whole: a silence, however late in its answer, is a provider_timeout
    before any output (nothing was delivered nor is billed), so the fallback answers as for any failure before
    output."""
    chat, ledger = _service(manager, [TextDelta("partial "), HANG], answer("again"), backup=answer("spare"))
    async with asyncio.timeout(10):
        result = await chat.complete(_ask(False), CALLER)
    assert result.response.text == "spare"
    assert [(r.outcome, r.output_tokens, r.estimated) for r in ledger.records] == [
        ("provider_timeout", 0, False),
        ("done", 1, False),
    ]


async def test_a_non_streamed_call_is_bounded_as_a_whole_not_by_the_silence_bound(manager: StreamingManager) -> None:
    """A vendor called without streaming says nothing until its answer is whole: it may take longer than the
    stream silence bound (``idle_timeout_s``), up to ``complete_timeout_s``, and past that it is provider_timeout."""
    slow = ScriptedTextProvider(answer("late"), name="scripted")
    ledger = InMemoryUsageLedger()
    vendors = text_vendors({"scripted": slow, "backup": ScriptedTextProvider(answer("spare"), name="backup")})
    registry = ProviderRegistry(CATALOG, vendors)

    def chat_with(complete_timeout_s: float) -> ChatService:
        policy = RetryPolicy(max_retries=0, idle_timeout_s=IDLE_S, complete_timeout_s=complete_timeout_s)
        return make_chat_service(registry, manager, ledger, NullMetrics(), policy, sleep=no_sleep)

    async with asyncio.timeout(10):
        slow.gate = asyncio.Event()
        asyncio.get_running_loop().call_later(IDLE_S * 4, slow.gate.set)
        assert (await chat_with(5.0).complete(_ask(False), CALLER)).response.text == "late"
        slow.gate = asyncio.Event()  # never set: the whole-call bound ends it, and the fallback answers
        assert (await chat_with(IDLE_S * 2).complete(_ask(False), CALLER)).response.text == "spare"
    assert slow.modes == ["complete", "complete"]
    assert [r.outcome for r in ledger.records] == ["done", "provider_timeout", "done"]


async def test_a_silent_attempt_is_retried_before_content(manager: StreamingManager) -> None:
    """The timeout is retryable: before any output, the next attempt answers and the caller sees only the answer."""
    chat, ledger = _service(manager, [HANG], answer("fine"), max_retries=1)
    async with asyncio.timeout(10):
        result = await chat.complete(_ask(False), CALLER)
    assert result.response.text == "fine"
    assert [r.outcome for r in ledger.records] == ["provider_timeout", "done"]


async def test_a_shorter_stall_watchdog_does_not_preempt_the_vendor_timeout() -> None:
    """With the watchdog set shorter than the vendor bound, a streamed silent vendor still ends as provider_timeout."""
    streams = StreamingManager(InMemoryStreamLog(), config=StreamingConfig(stall_timeout_s=IDLE_S / 2))
    try:
        chat, _ = _service(streams, [HANG])
        assert await _outcome(chat, streams, stream=True) == "provider_timeout"
    finally:
        await streams.aclose()
