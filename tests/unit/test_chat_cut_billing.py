"""Cut attempts are billed for what was sent and delivered: the vendor's usage where it reported, else an estimate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from adapters.memory.stream_log import InMemoryStreamLog
from domain.catalog import ModelSpec
from domain.chat import (
    ChatRequest,
    Message,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
    UsageReport,
)
from domain.errors import ProviderError, RateLimitError, ServiceError
from domain.streaming import StreamEvent
from domain.types import CustomerId, StreamId
from domain.usage import UsageRecord
from ports.metrics import NullMetrics
from services.attempts import RetryPolicy
from services.chat import ChatCaller, ChatService
from services.chat_billing import PER_MESSAGE, REPLY_PRIMING, Delivered, bill_cut_attempt, count_request
from services.registry import ProviderRegistry
from services.streaming.manager import StreamingManager
from services.streaming.runs import StreamingConfig
from tests.fakes.clock import no_sleep
from tests.fakes.providers import make_chat_service, text_vendors
from tests.fakes.text import HANG, Script, ScriptedTextProvider, answer
from tests.fakes.tokens import WordTokenCounter
from tests.fakes.usage import InMemoryUsageLedger

ALICE = CustomerId("alice")
CALLER = ChatCaller(ALICE, "req-cut")
PRICED = ModelSpec(
    "main", "scripted", frozenset({"text"}), input_price_per_mtok=1_000_000.0, output_price_per_mtok=2_000_000.0
)
"""Prices of $1 per input token and $2 per output token make every cost below readable."""
PROMPT = "please tell me a long story"  # 6 words
PROMPT_TOKENS = REPLY_PRIMING + PER_MESSAGE + 6
CHUNKS = ("Once ", "upon ", "a ", "time ", "there ", "was ", "a ", "cut ", "stream ", "that ", "ended ")  # 11 words


def _service(
    script: Script,
    *,
    streams: StreamingManager | None = None,
    counter: WordTokenCounter | None = None,
    policy: RetryPolicy | None = None,
) -> tuple[ChatService, InMemoryUsageLedger]:
    registry = ProviderRegistry([PRICED], text_vendors({"scripted": ScriptedTextProvider(script, name="scripted")}))
    ledger = InMemoryUsageLedger()
    chat = make_chat_service(
        registry,
        streams,
        ledger,
        NullMetrics(),
        policy or RetryPolicy(max_retries=0),
        sleep=no_sleep,
        tokens=counter if counter is not None else WordTokenCounter(),
    )
    return chat, ledger


def _ask(**kwargs: object) -> ChatRequest:
    return ChatRequest("scripted/main", [Message("user", PROMPT)], **kwargs)  # type: ignore[arg-type]


async def _recorded(ledger: InMemoryUsageLedger, timeout_s: float = 10.0) -> UsageRecord:
    """The one record, once the producer's cleanup wrote it (it runs after the stream's terminal event)."""
    deadline = time.monotonic() + timeout_s
    while not ledger.records:
        assert time.monotonic() < deadline, "no usage record was written"
        await asyncio.sleep(0.01)
    [record] = ledger.records
    return record


async def _stream_until(
    manager: StreamingManager, chat: ChatService, texts: int
) -> tuple[StreamId, AsyncIterator[StreamEvent]]:
    """Start a streamed chat and read it until ``texts`` text events went out; the reader stays attached."""
    stream_id = await chat.start_stream(_ask(stream=True), CALLER)
    events = manager.subscribe(stream_id, owner=ALICE)
    seen = 0
    while seen < texts:
        event = await anext(events)
        seen += event.type == "text"
    return stream_id, events


def _assert_estimated(record: UsageRecord, outcome: str, output_tokens: int) -> None:
    assert (record.outcome, record.estimated) == (outcome, True)
    assert (record.input_tokens, record.output_tokens) == (PROMPT_TOKENS, output_tokens)
    assert record.cost_usd == pytest.approx(PROMPT_TOKENS * 1.0 + output_tokens * 2.0)


async def test_owner_cancel_after_11_chunks_bills_prompt_and_delivered_text(manager: StreamingManager) -> None:
    """A stream the owner cancels after 11 chunks is billed the prompt and the 11 delivered words, estimated."""
    chat, ledger = _service([*(TextDelta(c) for c in CHUNKS), HANG], streams=manager)
    stream_id, events = await _stream_until(manager, chat, len(CHUNKS))
    await manager.cancel(stream_id, owner=ALICE)
    assert [e.type async for e in events][-1] == "cancelled"
    _assert_estimated(await _recorded(ledger), "cancelled", len(CHUNKS))


async def test_shutdown_mid_stream_bills_what_was_delivered(manager: StreamingManager) -> None:
    """A stream cut by the manager's shutdown is billed like an owner cancel."""
    chat, ledger = _service([*(TextDelta(c) for c in CHUNKS[:3]), HANG], streams=manager)
    await _stream_until(manager, chat, 3)
    await manager.aclose()
    _assert_estimated(await _recorded(ledger), "cancelled", 3)


async def test_reader_gone_past_grace_bills_what_was_delivered() -> None:
    """A stream cancelled because its last reader left (grace period 0) is billed what that reader got."""
    streams = StreamingManager(InMemoryStreamLog(), config=StreamingConfig(resume_grace_s=0))
    try:
        chat, ledger = _service([*(TextDelta(c) for c in CHUNKS[:4]), HANG], streams=streams)
        _, events = await _stream_until(streams, chat, 4)
        await events.aclose()  # type: ignore[attr-defined]  # the reader detaches: the stream is cancelled (grace)
        _assert_estimated(await _recorded(ledger), "cancelled", 4)
    finally:
        await streams.aclose()


async def test_a_vendor_gone_silent_mid_stream_is_billed_what_was_delivered() -> None:
    """A vendor silent after 2 chunks ends the stream with its timeout (not the watchdog, though shorter): billed 2."""
    streams = StreamingManager(InMemoryStreamLog(), config=StreamingConfig(stall_timeout_s=0.05))
    try:
        policy = RetryPolicy(max_retries=0, idle_timeout_s=0.3, deadline_s=0.3)
        chat, ledger = _service([*(TextDelta(c) for c in CHUNKS[:2]), HANG], streams=streams, policy=policy)
        _, events = await _stream_until(streams, chat, 2)
        last = [e async for e in events][-1]
        assert (last.type, last.payload["code"]) == ("error", "provider_timeout")
        _assert_estimated(await _recorded(ledger), "provider_timeout", 2)
    finally:
        await streams.aclose()


async def test_mid_stream_vendor_failure_bills_what_was_delivered(manager: StreamingManager) -> None:
    """A vendor failing after 3 streamed chunks: the record has its error code and the estimated prompt and 3 words."""
    chat, ledger = _service([*(TextDelta(c) for c in CHUNKS[:3]), ProviderError("scripted", "broke")], streams=manager)
    _stream_id, events = await _stream_until(manager, chat, 3)
    last = [e async for e in events][-1]
    assert (last.type, last.payload["code"]) == ("error", "provider_error")
    _assert_estimated(await _recorded(ledger), "provider_error", 3)


async def test_a_failed_non_streamed_call_delivered_nothing_and_is_not_estimated() -> None:
    """Without a stream the vendor is called whole, so a fault late in its answer fails the call with nothing
    delivered: the record keeps the vendor's (zero) figures, as for any failure before output."""
    chat, ledger = _service([*(TextDelta(c) for c in CHUNKS[:3]), ProviderError("scripted", "broke")])
    with pytest.raises(ProviderError):
        await chat.complete(_ask(), CALLER)
    record = await _recorded(ledger)
    assert (record.outcome, record.input_tokens, record.output_tokens, record.estimated) == (
        "provider_error",
        0,
        0,
        False,
    )


async def test_vendor_usage_seen_before_the_cut_wins_over_the_estimate(manager: StreamingManager) -> None:
    """When the vendor reported usage before the cut, its figures are billed and nothing is estimated."""
    script: Script = [TextDelta("Once "), UsageReport(Usage(40, 9)), TextDelta("upon "), HANG]
    counter = WordTokenCounter()
    chat, ledger = _service(script, streams=manager, counter=counter)
    stream_id, _ = await _stream_until(manager, chat, 2)
    await manager.cancel(stream_id, owner=ALICE)
    record = await _recorded(ledger)
    assert (record.input_tokens, record.output_tokens, record.estimated) == (40, 9, False)
    assert record.cost_usd == pytest.approx(40 * 1.0 + 9 * 2.0)
    assert counter.texts == []


async def test_a_retried_error_before_content_is_not_estimated() -> None:
    """A 429 before any output is not a cut: its record keeps the vendor's (zero) figures, not an estimate."""
    registry = ProviderRegistry(
        [PRICED],
        text_vendors({"scripted": ScriptedTextProvider([RateLimitError("slow", retry_after=0)], answer("ok"))}),
    )
    ledger = InMemoryUsageLedger()
    chat = make_chat_service(
        registry, None, ledger, NullMetrics(), RetryPolicy(), sleep=no_sleep, tokens=WordTokenCounter()
    )
    await chat.complete(_ask(), CALLER)
    assert [(r.outcome, r.input_tokens, r.estimated) for r in ledger.records] == [
        ("rate_limited", 0, False),
        ("done", 3, False),
    ]


def test_estimate_counts_system_messages_tools_schema_and_every_kind_of_output() -> None:
    """The request's system, texts, earlier tool calls and tool definitions, and the delivered text, reasoning and
    tool calls are all counted; reasoning is also reported as reasoning tokens."""
    request = ChatRequest(
        "scripted/main",
        [
            Message("user", "what is the weather"),  # 4
            Message("assistant", "", tool_calls=[ToolCall("c1", "weather", '{"city": "Oslo"}')]),  # 1 + 2
            Message("tool", "rainy", tool_call_id="c1"),  # 1
        ],
        system="be brief",  # 2
        tools=[ToolSpec("weather", "look it up", {"type": "object"})],  # 1 + 3 + 1
    )
    assert count_request(WordTokenCounter(), request) == REPLY_PRIMING + PER_MESSAGE * 4 + 4 + 3 + 1 + 2 + 5
    delivered = Delivered("it is", "thinking hard now", (ToolCall("c2", "weather", '{"city": "Bergen"}'),))
    usage, estimated = bill_cut_attempt(WordTokenCounter(), request, delivered, None)
    assert (usage.output_tokens, usage.reasoning_tokens, estimated) == (2 + 3 + 1 + 2, 3, True)


def test_partial_vendor_usage_is_completed_by_the_estimate() -> None:
    """A vendor that reported input tokens only: its input is kept, the delivered output is estimated."""
    delivered = Delivered("three words here")
    usage, estimated = bill_cut_attempt(WordTokenCounter(), _ask(), delivered, Usage(input_tokens=50, cached_tokens=8))
    assert (usage.input_tokens, usage.cached_tokens, usage.output_tokens, estimated) == (50, 8, 3, True)


async def test_a_failing_counter_still_leaves_the_record() -> None:
    """A tokenizer that fails never costs the record: it keeps the vendor's figures, not marked estimated."""

    class BrokenCounter(WordTokenCounter):
        def count(self, text: str) -> int:
            raise RuntimeError("tokenizer broke")

    chat, ledger = _service([TextDelta("Once "), ProviderError("scripted", "broke")], counter=BrokenCounter())
    with pytest.raises(ServiceError):
        await chat.complete(_ask(), CALLER)
    record = await _recorded(ledger)
    assert (record.outcome, record.input_tokens, record.estimated) == ("provider_error", 0, False)
