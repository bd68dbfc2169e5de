"""ChatService: retries before content only, one error after content, fallbacks, param policy, usage and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.catalog import ModelSpec
from domain.chat import (
    ChatRequest,
    ContentPart,
    Finish,
    Message,
    ProviderEvent,
    ResponseFormat,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
    Usage,
    UsageReport,
)
from domain.errors import (
    CapabilityError,
    DatabaseError,
    NotFoundError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServiceError,
    ValidationError,
)
from domain.types import CustomerId
from domain.usage import UsageRecord
from services.attempts import RetryPolicy
from services.chat import ChatCaller
from services.chat_events import ChatItem, Completed, Served
from services.registry import ProviderRegistry
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.providers import make_chat_service, text_vendors
from tests.fakes.text import Script, ScriptedTextProvider, answer
from tests.fakes.usage import InMemoryUsageLedger

CALLER = ChatCaller(CustomerId("alice"), "req-1")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def spec(model_id: str, provider: str = "scripted", **kwargs: object) -> ModelSpec:
    caps = kwargs.pop("capabilities", frozenset({"text"}))
    return ModelSpec(id=model_id, provider=provider, capabilities=caps, **kwargs)  # type: ignore[arg-type]


class Clock:
    """A manual clock that sleeping advances."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Harness:
    def __init__(
        self,
        primary: Sequence[Script],
        backup: Sequence[Script] = (),
        *,
        catalog: Sequence[ModelSpec] | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.primary = ScriptedTextProvider(*primary, name="scripted")
        self.backup = ScriptedTextProvider(*(backup or [answer("backup")]), name="backup")
        self.catalog = list(
            catalog
            or [
                spec("main", input_price_per_mtok=1.0, output_price_per_mtok=2.0),
                spec("chained", fallbacks=("backup/spare",)),
                spec("spare", provider="backup"),
            ]
        )
        self.registry = ProviderRegistry(self.catalog, text_vendors({"scripted": self.primary, "backup": self.backup}))
        self.clock = Clock()
        self.ledger = InMemoryUsageLedger()
        self.metrics = RecordingMetrics()
        self.service = make_chat_service(
            self.registry,
            None,
            self.ledger,
            self.metrics,
            policy or RetryPolicy(max_retries=2, deadline_s=30.0, base_delay_s=0.25, max_delay_s=8.0),
            sleep=self.clock.sleep,
            clock=self.clock,
            jitter=lambda: 0.5,
        )

    async def items(self, request: ChatRequest) -> tuple[list[ChatItem], ServiceError | None]:
        seen: list[ChatItem] = []
        try:
            async for item in self.service.run(self.service.plan(request), CALLER):
                seen.append(item)
        except ServiceError as exc:
            return seen, exc
        return seen, None


def ask(model: str = "main", text: str = "hi", **kwargs: object) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", text)], **kwargs)  # type: ignore[arg-type]


def texts(items: Sequence[ChatItem]) -> list[str]:
    return [i.text for i in items if isinstance(i, TextDelta)]


async def test_rate_limit_then_success_is_retried_and_text_arrives_once() -> None:
    """A 429 before content is retried after Retry-After; the client sees the answer exactly once."""
    h = Harness([[RateLimitError("slow down", retry_after=1.5)], answer("Hel", "lo")])
    items, error = await h.items(ask())
    assert error is None
    assert texts(items) == ["Hel", "lo"]
    assert sum(isinstance(i, Served) for i in items) == 1
    assert h.clock.sleeps == [1.5]
    assert h.primary.calls == 2
    assert [r.outcome for r in h.ledger.records] == ["rate_limited", "done"]
    assert [r.retries for r in h.ledger.records] == [0, 1]
    assert h.metrics.total("provider_retries_total") == 1
    served = next(i for i in items if isinstance(i, Served))
    assert served.retries == 1


async def test_error_after_content_ends_the_run_without_retry_or_repeat() -> None:
    """Once text went out, a failure is raised as-is: no retry, no fallback, the text is never repeated."""
    failure = ProviderError("scripted", "upstream broke", retryable=True)
    h = Harness([[TextDelta("Hel"), failure], answer("Hello")])
    items, error = await h.items(ask("chained"))
    assert error is failure
    assert texts(items) == ["Hel"]
    assert h.primary.calls == 1
    assert h.backup.calls == 0
    assert [r.outcome for r in h.ledger.records] == ["provider_error"]


async def test_fallback_serves_when_primary_fails_before_content() -> None:
    """A request fallback takes over after the primary's non-retryable failure; Served names it."""
    h = Harness([[ProviderError("scripted", "bad key")]], [answer("from", " backup")])
    items, error = await h.items(ask(fallbacks=["backup/spare"]))
    assert error is None
    served = next(i for i in items if isinstance(i, Served))
    assert served.model.qualified_id == "backup/spare"
    assert served.fallback_used == "backup/spare"
    assert served.meta()["requested_model"] == "scripted/main"
    assert texts(items) == ["from", " backup"]
    assert [(r.model, r.outcome, r.fallback_used) for r in h.ledger.records] == [
        ("scripted/main", "provider_error", None),
        ("backup/spare", "done", "backup/spare"),
    ]
    assert h.metrics.total("provider_fallbacks_total") == 1


async def test_catalog_fallback_is_tried_after_retries_are_exhausted() -> None:
    """The catalog's fallbacks follow the primary once its retries are spent."""
    overloaded = ProviderError("scripted", "overloaded", retryable=True)
    h = Harness([[overloaded]])
    items, error = await h.items(ask("chained"))
    assert error is None
    assert h.primary.calls == 3  # 1 + max_retries
    assert texts(items) == ["backup"]
    assert len(h.clock.sleeps) == 2


async def test_retries_stop_at_max_retries_and_raise_the_last_error() -> None:
    """Without fallbacks, the last error is raised after 1 + max_retries calls, with backoff growing."""
    h = Harness([[ProviderTimeoutError("scripted")]])
    items, error = await h.items(ask())
    assert isinstance(error, ProviderTimeoutError)
    assert items == []
    assert h.primary.calls == 3
    assert h.clock.sleeps == [0.1875, 0.375]  # equal jitter at 0.5 of 0.25 and 0.5


async def test_retry_after_beyond_the_deadline_is_not_waited_for() -> None:
    """A Retry-After that would pass the retry deadline ends the attempts at once."""
    h = Harness([[RateLimitError("later", retry_after=60)]], policy=RetryPolicy(max_retries=5, deadline_s=10))
    _, error = await h.items(ask())
    assert isinstance(error, RateLimitError)
    assert h.clock.sleeps == []
    assert h.primary.calls == 1


async def test_non_retryable_errors_are_not_retried() -> None:
    """A vendor 400 (validation) is not retried."""
    h = Harness([[ValidationError("messages", "context too long")]])
    _, error = await h.items(ask())
    assert isinstance(error, ValidationError)
    assert h.primary.calls == 1


def test_unknown_model_is_404_with_suggestions() -> None:
    """An unknown name lists the closest known ids."""
    h = Harness([answer("x")])
    with pytest.raises(NotFoundError) as caught:
        h.service.plan(ask("mian"))
    assert "scripted/main" in caught.value.message
    assert caught.value.context["suggestions"][0] == "scripted/main"


def test_missing_capability_is_422_naming_model_and_capability() -> None:
    """Tools on a model without ``tools`` is a CapabilityError naming both."""
    h = Harness([answer("x")])
    with pytest.raises(CapabilityError) as caught:
        h.service.plan(ask(tools=[ToolSpec("lookup")]))
    assert caught.value.model == "scripted/main"
    assert caught.value.capability == "tools"
    assert "'scripted/main'" in caught.value.message
    assert "'tools'" in caught.value.message


def test_vision_and_structured_output_are_required_by_the_request() -> None:
    """Image parts need ``vision``; a JSON response format needs ``structured_output``."""
    h = Harness([answer("x")])
    image = ChatRequest(
        model="main", messages=[Message("user", [ContentPart("image", image_url="data:image/png;base64,AA==")])]
    )
    with pytest.raises(CapabilityError, match="vision"):
        h.service.plan(image)
    with pytest.raises(CapabilityError, match="structured_output"):
        h.service.plan(ask(response_format=ResponseFormat("json_object")))


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (ChatRequest(model="main", messages=[]), "messages"),
        (ChatRequest(model=" ", messages=[Message("user", "x")]), "model"),
        (ask(temperature=3.0), "temperature"),
        (ask(max_tokens=0), "max_tokens"),
        (ChatRequest(model="main", messages=[Message("tool", "42")]), "messages[0].tool_call_id"),
    ],
)
def test_semantic_errors_name_the_field(request_: ChatRequest, field: str) -> None:
    """Rules the types cannot express are 422s naming the field."""
    h = Harness([answer("x")])
    with pytest.raises(ValidationError) as caught:
        h.service.plan(request_)
    assert caught.value.field == field


async def test_unsupported_params_are_dropped_and_defaults_applied() -> None:
    """A reasoning model never receives temperature; the catalog default max_tokens fills in."""
    catalog = [
        spec(
            "main",
            unsupported_params=frozenset({"temperature"}),
            default_params={"max_tokens": 64},
        )
    ]
    h = Harness([answer("ok")], catalog=catalog)
    items, _ = await h.items(ask(temperature=0.3))
    sent = h.primary.requests[0]
    assert sent.temperature is None
    assert sent.max_tokens == 64
    served = next(i for i in items if isinstance(i, Served))
    assert served.dropped_params == ("temperature",)


async def test_complete_assembles_parallel_tool_calls_usage_and_cost() -> None:
    """Interleaved argument deltas land on the right call; usage and catalog cost are in the response."""
    script: Script = [
        ToolCallStart(0, "c0", "weather"),
        ToolCallStart(1, "c1", "time"),
        ToolCallDelta(0, "c0", '{"city":'),
        ToolCallDelta(1, "c1", '{"tz":'),
        ToolCallDelta(0, "c0", '"Oslo"}'),
        ToolCallDelta(1, "c1", '"UTC"}'),
        ToolCallEnd(0, "c0"),
        ToolCallEnd(1, "c1"),
        UsageReport(Usage(1000, 500)),
        Finish("tool_calls"),
    ]
    catalog = [spec("main", capabilities=frozenset({"text", "tools"}), input_price_per_mtok=1, output_price_per_mtok=2)]
    h = Harness([script], catalog=catalog)
    result = await h.service.complete(ask(tools=[ToolSpec("weather"), ToolSpec("time")]), CALLER)
    calls = result.response.tool_calls
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("c0", "weather", '{"city":"Oslo"}'),
        ("c1", "time", '{"tz":"UTC"}'),
    ]
    assert result.response.finish_reason == "tool_calls"
    assert result.response.usage == Usage(1000, 500)
    assert result.response.cost_usd == pytest.approx(0.002)
    assert result.meta["model"] == "scripted/main"
    assert h.ledger.records[0].cost_usd == pytest.approx(0.002)
    assert h.metrics.total("tokens_total") == 1500


async def test_a_non_streamed_chat_calls_the_vendor_whole_with_the_same_retries_fallbacks_and_accounting() -> None:
    """``complete`` makes every attempt one call without streaming; the retry, the fallback, the response, the usage
    records and the metrics are exactly those of the same run streamed."""
    tools: Script = [
        ToolCallStart(0, "c0", "weather"),
        ToolCallDelta(0, "c0", '{"city":'),
        ToolCallDelta(0, "c0", '"Oslo"}'),
        ToolCallEnd(0, "c0"),
        UsageReport(Usage(1000, 500, 10, 5)),
        Finish("tool_calls"),
    ]
    primary: list[Script] = [[RateLimitError("slow", retry_after=1.0)], [ProviderError("scripted", "down")]]
    catalog = [
        spec("main", capabilities=frozenset({"text", "tools"}), fallbacks=("backup/spare",), input_price_per_mtok=1),
        spec("spare", provider="backup", capabilities=frozenset({"text", "tools"}), output_price_per_mtok=2),
    ]
    request = ask(tools=[ToolSpec("weather")])
    streamed, whole = Harness(primary, [tools], catalog=catalog), Harness(primary, [tools], catalog=catalog)
    items, error = await streamed.items(request)
    assert error is None
    assert isinstance(items[-1], Completed)
    result = await whole.service.complete(request, CALLER)
    assert result.response == items[-1].response
    assert result.meta == {**items[-1].served.meta(), "ttft_ms": items[-1].ttft_ms}
    assert (whole.primary.modes, whole.backup.modes) == (["complete", "complete"], ["complete"])
    assert (streamed.primary.modes, streamed.backup.modes) == (["stream", "stream"], ["stream"])
    assert [attrs.evolve(r, id="", created_at=EPOCH) for r in whole.ledger.records] == [
        attrs.evolve(r, id="", created_at=EPOCH) for r in streamed.ledger.records
    ]
    assert [r.outcome for r in whole.ledger.records] == ["rate_limited", "provider_error", "done"]
    assert (whole.metrics.counters, whole.metrics.observations) == (
        streamed.metrics.counters,
        streamed.metrics.observations,
    )
    assert whole.clock.sleeps == streamed.clock.sleeps == [1.0]


async def test_done_run_ends_with_completed_and_records_ttft() -> None:
    """The last item is Completed; the usage record carries latency and time to first token."""
    h = Harness([answer("a", "b")])
    items, _ = await h.items(ask())
    assert isinstance(items[-1], Completed)
    assert items[-1].response.text == "ab"
    record = h.ledger.records[0]
    assert record.outcome == "done"
    assert record.ttft_ms is not None
    assert record.customer_id == "alice"
    assert record.request_id == "req-1"


async def test_abandoned_run_is_recorded_as_cancelled() -> None:
    """A consumer that stops reading leaves a ``cancelled`` usage record and closes the provider stream."""
    h = Harness([answer("a", "b", "c")])
    run = h.service.run(h.service.plan(ask()), CALLER)
    await anext(run)  # Served
    await anext(run)  # first text
    await run.aclose()
    assert [r.outcome for r in h.ledger.records] == ["cancelled"]


@given(
    retry=st.integers(min_value=1, max_value=20),
    jitter=st.floats(min_value=0, max_value=1),
    base=st.floats(min_value=0.01, max_value=2),
)
def test_backoff_stays_within_half_and_full_ceiling(retry: int, jitter: float, base: float) -> None:
    """Backoff is between half and all of min(max_delay, base * 2**(retry-1))."""
    policy = RetryPolicy(base_delay_s=base, max_delay_s=8.0)
    ceiling = min(8.0, base * 2 ** (retry - 1))
    delay = policy.backoff(retry, ProviderError("x", "y", retryable=True), jitter)
    assert ceiling / 2 - 1e-9 <= delay <= ceiling + 1e-9


async def test_a_model_listed_twice_is_tried_once() -> None:
    """The primary named again as a request fallback, or a fallback named by both request and catalog, runs once."""
    h = Harness([[ProviderError("scripted", "bad key")]], [[ProviderError("backup", "also bad")]])
    _, error = await h.items(ask("main", fallbacks=["scripted/main"]))
    assert isinstance(error, ProviderError)
    assert h.primary.calls == 1
    h = Harness([[ProviderError("scripted", "bad key")]], [[ProviderError("backup", "also bad")]])
    _, error = await h.items(ask("chained", fallbacks=["backup/spare"]))
    assert (h.primary.calls, h.backup.calls) == (1, 1)
    assert error is not None
    assert error.context["models_tried"] == ["scripted/chained", "backup/spare"]


async def test_after_every_retry_and_fallback_the_last_error_is_raised() -> None:
    """When the primary's retries and then the fallback fail, the fallback's own error is raised, naming both."""
    overloaded = ProviderError("scripted", "overloaded", retryable=True)
    last = ProviderError("backup", "backup refused")
    h = Harness([[overloaded]], [[last]])
    items, error = await h.items(ask("chained"))
    assert error is last
    assert items == []
    assert (h.primary.calls, h.backup.calls) == (3, 1)
    assert last.context["models_tried"] == ["scripted/chained", "backup/spare"]
    assert [(r.model, r.outcome, r.retries) for r in h.ledger.records] == [
        ("scripted/chained", "provider_error", 0),
        ("scripted/chained", "provider_error", 1),
        ("scripted/chained", "provider_error", 2),
        ("backup/spare", "provider_error", 0),
    ]
    assert [r.fallback_used for r in h.ledger.records] == [None, None, None, "backup/spare"]
    assert h.metrics.total("provider_fallbacks_total") == 1
    assert h.metrics.total("provider_retries_total") == 2


class _TimedProvider(ScriptedTextProvider):
    """Plays its scripts on the harness clock: the first event after ``ttft_s``, each later one ``gap_s`` after."""

    def __init__(self, clock: Clock, *scripts: Script, ttft_s: float, gap_s: float) -> None:
        super().__init__(*scripts, name="scripted")
        self._clock, self._ttft_s, self._gap_s = clock, ttft_s, gap_s

    async def _play(self, script: list[Any]) -> AsyncIterator[ProviderEvent]:
        for index, item in enumerate(script):
            self._clock.now += self._ttft_s if index == 0 else self._gap_s
            if isinstance(item, BaseException):
                raise item
            yield item


async def test_each_attempt_is_accounted_with_its_own_timing_tokens_and_cost() -> None:
    """A done attempt records latency, time to first token, every token kind and the catalog cost, in the ledger
    and the metrics; a failed attempt before it records its outcome and no latency histogram."""
    h = Harness([answer("x")])
    usage = Usage(input_tokens=1000, output_tokens=500, cached_tokens=200, reasoning_tokens=100)
    provider = _TimedProvider(
        h.clock, [RateLimitError("slow", retry_after=1.0)], answer("a", "b", usage=usage), ttft_s=0.25, gap_s=0.5
    )
    h.registry = ProviderRegistry(h.catalog, text_vendors({"scripted": provider, "backup": h.backup}))
    h.service.runner.registry = h.registry
    items, error = await h.items(ask())
    assert error is None
    failed, done = h.ledger.records
    assert (failed.outcome, failed.retries, failed.ttft_ms, failed.latency_ms) == ("rate_limited", 0, None, 250.0)
    assert (done.outcome, done.retries, done.ttft_ms) == ("done", 1, 250.0)
    assert done.latency_ms == 1750.0  # 0.25 to the first text, then b, usage and finish 0.5 s apart
    assert (done.input_tokens, done.output_tokens, done.cached_tokens, done.reasoning_tokens) == (1000, 500, 200, 100)
    assert done.cost_usd == pytest.approx(0.002)
    assert (done.provider, done.model, done.fallback_used, done.stream_id) == ("scripted", "scripted/main", None, None)
    labels = (("model", "scripted/main"), ("provider", "scripted"))
    assert h.metrics.counters[("provider_requests_total", (*labels[:1], ("outcome", "done"), labels[1]))] == 1
    assert h.metrics.counters[("provider_requests_total", (*labels[:1], ("outcome", "rate_limited"), labels[1]))] == 1
    assert h.metrics.observations[("provider_latency_seconds", labels)] == [1.75]
    assert h.metrics.observations[("provider_ttft_seconds", labels)] == [0.25]
    tokens = {dict(key[1])["kind"]: value for key, value in h.metrics.counters.items() if key[0] == "tokens_total"}
    assert tokens == {"input": 1000.0, "output": 500.0, "cached": 200.0, "reasoning": 100.0}
    assert h.metrics.counters[("cost_usd_total", labels)] == pytest.approx(0.002)
    assert h.metrics.counters[("provider_errors_total", (("provider", "scripted"), ("type", "rate_limited")))] == 1
    assert isinstance(items[-1], Completed)
    assert items[-1].response.latency_ms == 3000.0  # from the run's start: the failed attempt and the 1 s wait too


async def test_a_ledger_failure_never_fails_the_answer() -> None:
    """When the usage ledger refuses a record, the answer still arrives and the failure is counted."""

    class FailingLedger(InMemoryUsageLedger):
        async def record(self, record: UsageRecord) -> None:
            raise DatabaseError("insert_usage", "down")

    h = Harness([answer("ok")])
    h.service.runner._usage = FailingLedger()
    items, error = await h.items(ask())
    assert error is None
    assert texts(items) == ["ok"]
    assert h.metrics.total("ledger_flush_failures_total") == 1
