"""Use case: chat. Resolve the model, call its provider with retries and fallbacks, stream or assemble the answer.

Reliability rules (the heart of this module):

- Retryable errors (429, 5xx/overloaded, timeouts) are retried with exponential backoff and jitter, honouring
  ``RateLimitError.retry_after``, at most ``max_retries`` times per model and never past ``deadline_s``.
- Retries and fallbacks happen only before the first event of an attempt went out. After that, a failure ends the
  run with that error (one ``error`` event on a stream) and nothing is ever repeated.
- Fallbacks (the request's ``fallbacks``, then the catalog entry's) are tried in order once a model gives up.
- A vendor silent for ``idle_timeout_s`` (before its first event or between two) fails the attempt with a retryable
  ``ProviderTimeoutError``, streamed or not, under the rules above: one error, whichever way the caller asked.
- Every provider call (each attempt) leaves one ``UsageRecord`` and the canonical provider metrics. An attempt cut
  before the vendor reported usage (run closed: ``cancelled``; or failed after its first output) is billed on an
  estimate of what was sent and delivered (``services/chat_billing.py``), marked ``estimated``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing
from datetime import UTC, datetime

from attrs import frozen

from domain.catalog import ModelSpec
from domain.chat import ChatRequest, Finish, ProviderEvent, ProviderResponse, Usage
from domain.errors import ProviderError, RateLimitError, ServiceError, ServiceUnavailableError, ValidationError
from domain.registry import cost_usd, prepare_request, required_capabilities
from domain.types import CustomerId, JsonValue, StreamId
from domain.usage import UsageRecord
from ports.metrics import Metrics
from ports.tokens import TokenCounter
from ports.usage import UsageLedger
from services.chat_billing import Delivered, bill_cut_attempt
from services.chat_events import ChatItem, Completed, ResponseAssembler, Served, done_payload, stream_event
from services.registry import ProviderRegistry
from services.silence import SilenceBound
from services.streaming.manager import StreamingManager, StreamPublisher

__all__ = ["ChatCaller", "ChatPlan", "ChatResult", "ChatService", "RetryPolicy"]

_log = logging.getLogger("switchyard.chat")


@frozen
class RetryPolicy:
    """How hard to try one model (from ``providers.*`` settings)."""

    max_retries: int = 2
    deadline_s: float = 30.0
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0
    idle_timeout_s: float = 60.0
    """Longest a vendor may stay silent (before its first event, or between two) before the attempt fails with
    ``provider_timeout``; ``providers.request_timeout_s``, the SDKs' read timeout too. The same bound whether the
    caller streams or not."""

    def backoff(self, retry: int, error: ServiceError, jitter: float) -> float:
        """Seconds to wait before retry number ``retry`` (1-based): the vendor's ``Retry-After`` when it gave one,
        else ``base * 2**(retry-1)`` capped at ``max_delay_s``, with "equal jitter" (half fixed, half random)."""
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return max(0.0, float(error.retry_after))
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** (retry - 1))
        return ceiling / 2 + jitter * ceiling / 2


@frozen
class ChatCaller:
    """Who asks and under which request id (for usage records)."""

    customer_id: CustomerId
    request_id: str


@frozen
class ChatPlan:
    """A validated request and the models to try, primary first."""

    request: ChatRequest
    candidates: tuple[ModelSpec, ...]

    @property
    def primary(self) -> ModelSpec:
        return self.candidates[0]


@frozen
class ChatResult:
    """A whole answer and the ``meta`` saying who served it."""

    response: ProviderResponse
    meta: dict[str, JsonValue]


class _Attempt:
    """Timing and accumulation of one provider call."""

    def __init__(self, spec: ModelSpec, started: float) -> None:
        self.spec = spec
        self.started = started
        self.first_event_at: float | None = None
        self.assembler = ResponseAssembler()

    @property
    def committed(self) -> bool:
        """Whether an event of this attempt went out (no retry or fallback from here on)."""
        return self.first_event_at is not None

    def ttft_ms(self) -> float | None:
        return None if self.first_event_at is None else (self.first_event_at - self.started) * 1000


class ChatService:
    """Chat dispatch over the registry, with the streaming manager for ``stream: true``."""

    def __init__(
        self,
        registry: ProviderRegistry,
        streams: StreamingManager | None,
        usage: UsageLedger,
        metrics: Metrics,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        jitter: Callable[[], float] = random.random,
        tokens: TokenCounter | None = None,
    ) -> None:
        self.registry = registry
        self._tokens = tokens
        self._streams = streams
        self._usage = usage
        self._metrics = metrics
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self._jitter = jitter

    @property
    def streams(self) -> StreamingManager:
        """The streaming manager chat streams run in (for delivery: subscribe, cancel, resume)."""
        if self._streams is None:
            raise ServiceUnavailableError("streaming is not available in this process")
        return self._streams

    # --- planning -----------------------------------------------------------------------------------------------

    def plan(self, request: ChatRequest) -> ChatPlan:
        """Check the request and resolve its models: 422 for semantic errors, 404 unknown, 422 missing capability.

        Request fallbacks must resolve and qualify; catalog fallbacks that are disabled or unfit are skipped.
        """
        _check_semantics(request)
        needed = required_capabilities(request)
        primary = self.registry.resolve(request.model, capabilities=needed)
        candidates = [primary]
        for name in request.fallbacks:
            candidates.append(self.registry.resolve(name, capabilities=needed))
        for name in primary.fallbacks:
            try:
                candidates.append(self.registry.resolve(name, capabilities=needed))
            except ServiceError:
                continue
        unique: dict[str, ModelSpec] = {}
        for candidate in candidates:
            unique.setdefault(candidate.qualified_id, candidate)  # tried once, at its first position
        return ChatPlan(request, tuple(unique.values()))

    # --- the run ------------------------------------------------------------------------------------------------

    async def run(
        self, plan: ChatPlan, caller: ChatCaller, *, stream_id: StreamId | None = None
    ) -> AsyncGenerator[ChatItem, None]:
        """Yield ``Served``, the serving attempt's events, then ``Completed``; raise the error that ended it."""
        started = self._clock()
        deadline = started + self.policy.deadline_s
        last_error: ServiceError | None = None
        retries_total = 0
        for position, spec in enumerate(plan.candidates):
            if position:
                self._metrics.increment(
                    "provider_fallbacks_total", from_model=plan.primary.qualified_id, to_model=spec.qualified_id
                )
            prepared = prepare_request(plan.request, spec)
            provider = self.registry.text_provider(spec)
            retry = 0
            while True:
                attempt = _Attempt(spec, self._clock())
                outcome = "cancelled"
                try:
                    stream = provider.stream(prepared.request, spec)
                    silence = SilenceBound(spec.provider, self.policy.idle_timeout_s)
                    try:
                        while (event := await _next_or_none(silence, stream)) is not None:
                            if not attempt.committed:
                                attempt.first_event_at = self._clock()
                                served = Served(spec, plan.primary, retries_total, prepared.dropped)
                                yield served
                            attempt.assembler.feed(event)
                            if not isinstance(event, Finish):
                                yield event
                    finally:
                        silence.close()
                        aclose = getattr(stream, "aclose", None)
                        if aclose is not None:
                            await aclose()
                    outcome = "done"
                except ServiceError as exc:
                    outcome = exc.code
                    self._metrics.increment("provider_errors_total", provider=spec.provider, type=exc.code)
                    if attempt.committed:
                        raise  # content went out: end with this error, never repeat the text
                    last_error = exc
                except Exception:
                    outcome = "internal_error"
                    raise
                finally:
                    await self._account(attempt, outcome, caller, stream_id, plan.primary, retry, prepared.request)
                if outcome == "done":
                    response = self._response(attempt, started)
                    yield Completed(
                        response,
                        Served(spec, plan.primary, retries_total, prepared.dropped),
                        _elapsed_ms(started, attempt.first_event_at),
                    )
                    return
                assert last_error is not None
                delay = self._retry_delay(last_error, retry, deadline)
                if delay is None:
                    break
                retry += 1
                retries_total += 1
                self._metrics.increment("provider_retries_total", provider=spec.provider)
                await self._sleep(delay)
        assert last_error is not None
        last_error.context.setdefault("models_tried", [s.qualified_id for s in plan.candidates])
        raise last_error

    def _retry_delay(self, error: ServiceError, retry: int, deadline: float) -> float | None:
        if not error.retryable or retry >= self.policy.max_retries:
            return None
        delay = self.policy.backoff(retry + 1, error, self._jitter())
        if self._clock() + delay > deadline:
            return None
        return delay

    def _response(self, attempt: _Attempt, started: float) -> ProviderResponse:
        usage = attempt.assembler.usage
        return attempt.assembler.response(
            attempt.spec, latency_ms=(self._clock() - started) * 1000, cost_usd=cost_usd(usage, attempt.spec)
        )

    async def _account(
        self,
        attempt: _Attempt,
        outcome: str,
        caller: ChatCaller,
        stream_id: StreamId | None,
        primary: ModelSpec,
        retry: int,
        request: ChatRequest,
    ) -> None:
        spec = attempt.spec
        latency_s = self._clock() - attempt.started
        usage, estimated = attempt.assembler.usage, False
        if outcome == "cancelled" or (outcome != "done" and attempt.committed):
            usage, estimated = await self._bill_cut(attempt, request)
        cost = cost_usd(usage, spec) or 0.0
        ttft = attempt.ttft_ms()
        labels: dict[str, str] = {"provider": spec.provider, "model": spec.qualified_id}
        self._metrics.increment("provider_requests_total", 1.0, outcome=outcome, **labels)
        if outcome == "done":
            self._metrics.observe("provider_latency_seconds", latency_s, **labels)
        if ttft is not None:
            self._metrics.observe("provider_ttft_seconds", ttft / 1000, **labels)
        for kind, count in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cached", usage.cached_tokens),
            ("reasoning", usage.reasoning_tokens),
        ):
            if count:
                self._metrics.increment("tokens_total", float(count), kind=kind, **labels)
        if cost:
            self._metrics.increment("cost_usd_total", cost, **labels)
        record = UsageRecord(
            request_id=caller.request_id,
            customer_id=caller.customer_id,
            capability="text",
            provider=spec.provider,
            model=spec.qualified_id,
            outcome=outcome,
            created_at=self._now(),
            stream_id=stream_id,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost_usd=cost,
            latency_ms=round(latency_s * 1000, 3),
            ttft_ms=None if ttft is None else round(ttft, 3),
            retries=retry,
            fallback_used=None if spec == primary else spec.qualified_id,
            estimated=estimated,
        )
        try:
            await self._usage.record(record)
        except ServiceError:
            self._metrics.increment("ledger_flush_failures_total")

    async def _bill_cut(self, attempt: _Attempt, request: ChatRequest) -> tuple[Usage, bool]:
        """Usage of an attempt cut short: the vendor's where it reported, else an estimate (``chat_billing``).

        Counted in a worker thread: tiktoken takes ~0.1 s per MB of text (0.5 s for a pathological 1 MB), and its
        first use loads the encoding (~0.4 s); a body may be 1 MB. A failure to count never loses the record."""
        assembler = attempt.assembler
        reported = assembler.usage if assembler.usage_reported else None
        if self._tokens is None:
            return assembler.usage, False
        try:
            return await asyncio.to_thread(bill_cut_attempt, self._tokens, request, Delivered.of(assembler), reported)
        except Exception:  # noqa: BLE001 - bill what the vendor said rather than drop the record; it is logged
            _log.exception("usage_estimate_failed", extra={"model": attempt.spec.qualified_id})
            return assembler.usage, False

    # --- the two ways to consume a run ------------------------------------------------------------------------

    async def complete(self, request: ChatRequest, caller: ChatCaller) -> ChatResult:
        """Run ``request`` to the end and return the assembled response (``stream: false``)."""
        plan = self.plan(request)
        async with aclosing(self.run(plan, caller)) as items:
            async for item in items:
                if isinstance(item, Completed):
                    return ChatResult(item.response, {**item.served.meta(), "ttft_ms": item.ttft_ms})
        raise ProviderError(plan.primary.provider, "the provider ended without an answer")  # pragma: no cover

    async def start_stream(self, request: ChatRequest, caller: ChatCaller) -> StreamId:
        """Validate and resolve now (errors surface as HTTP errors), then stream through the StreamingManager."""
        streams = self.streams
        plan = self.plan(request)

        async def produce(publisher: StreamPublisher) -> Mapping[str, JsonValue] | None:
            # Silent vendors end as provider_timeout (retried within the deadline), as when not streaming.
            publisher.expect_silence(max(self.policy.idle_timeout_s, self.policy.deadline_s))
            async with aclosing(self.run(plan, caller, stream_id=publisher.stream_id)) as items:
                async for item in items:
                    if isinstance(item, Completed):
                        return done_payload(item)
                    event = stream_event(item)
                    if event is not None:
                        type_, payload = event
                        if type_ == "start":
                            payload = {"stream_id": publisher.stream_id, **payload}
                        await publisher.publish(type_, payload)
            return None  # pragma: no cover - run always completes or raises

        meta: dict[str, JsonValue] = {"model": plan.primary.qualified_id, "request_id": caller.request_id}
        return await streams.start(owner=caller.customer_id, producer=produce, kind="chat", meta=meta)


async def _next_or_none(silence: SilenceBound, stream: AsyncIterator[ProviderEvent]) -> ProviderEvent | None:
    """The vendor's next event within the silence bound (this one bound serves streamed and whole answers alike: the
    stream's stall watchdog is only the last resort for producers that are not vendor calls); ``None`` at the end."""
    try:
        return await silence.next(stream)
    except StopAsyncIteration:
        return None


def _elapsed_ms(started: float, at: float | None) -> float | None:
    return None if at is None else round((at - started) * 1000, 3)


def _check_semantics(request: ChatRequest) -> None:
    """Rules the body's types cannot express; each error names the field."""
    if not request.model.strip():
        raise ValidationError("model", "must not be empty")
    if not request.messages:
        raise ValidationError("messages", "must contain at least one message")
    for index, message in enumerate(request.messages):
        if message.role == "tool" and not message.tool_call_id:
            raise ValidationError(f"messages[{index}].tool_call_id", "is required on tool messages")
        if not isinstance(message.content, str):
            for part_index, part in enumerate(message.content):
                where = f"messages[{index}].content[{part_index}]"
                if part.type == "text" and part.text is None:
                    raise ValidationError(f"{where}.text", "is required on text parts")
                if part.type == "image" and not part.image_url:
                    raise ValidationError(f"{where}.image_url", "is required on image parts")
    if request.temperature is not None and not 0.0 <= request.temperature <= 2.0:
        raise ValidationError("temperature", "must be between 0 and 2")
    if request.top_p is not None and not 0.0 <= request.top_p <= 1.0:
        raise ValidationError("top_p", "must be between 0 and 1")
    if request.max_tokens is not None and request.max_tokens < 1:
        raise ValidationError("max_tokens", "must be at least 1")
    names = [tool.name for tool in request.tools]
    if len(set(names)) != len(names):
        raise ValidationError("tools", "tool names must be unique")
    choice = request.tool_choice
    if choice is not None and choice.mode == "tool" and choice.name not in names:
        raise ValidationError("tool_choice.name", f"must name one of the tools ({', '.join(names) or 'none given'})")
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_schema" and not fmt.json_schema:
        raise ValidationError("response_format.json_schema", "is required when type is json_schema")
