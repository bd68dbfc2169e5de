"""Use case: chat. Plan the request (rules, models to try), run it through the attempt runner, stream or assemble it.

A client that streams gets the vendor's stream; one that does not (``complete``) gets one call made without
streaming (``TextProvider.complete``), about half the client CPU of a stream for the same answer. That call has no
partial output: a vendor fault, however late, fails it before anything is delivered, so it is retried like any
failure before output, and it is bounded as a whole by ``RetryPolicy.complete_timeout_s`` rather than by the
stream's silence bound.

Retries, fallbacks, the silence bound and per-attempt accounting are the attempt runner's (``services/attempts.py``);
chat adds what is chat: the request's rules, adapting it to each model, assembling the answer, and billing an attempt
cut before the vendor reported usage (run closed: ``cancelled``; or failed after its first output) on an estimate of
what was sent and delivered (``services/chat_billing.py``), marked ``estimated``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing

from attrs import frozen

from domain.catalog import ModelSpec
from domain.chat import ChatRequest, Finish, ProviderEvent, ProviderResponse, Usage
from domain.chat_rules import prepare_request, required_capabilities
from domain.completion import Completion
from domain.errors import ProviderError, ServiceUnavailableError, ValidationError
from domain.pricing import cost_usd
from domain.types import JsonValue, StreamId
from ports.text import TEXT_PORT, TextProvider
from ports.tokens import TokenCounter
from services.attempts import Attempt, AttemptRunner, Bill, Caller, Candidates, Finished
from services.chat_billing import Delivered, bill_cut_attempt
from services.chat_events import ChatItem, Completed, ResponseAssembler, Served, done_payload, stream_event
from services.quota_estimates import chat_units
from services.quotas import Admission, QuotaGate
from services.registry import ProviderRegistry
from services.streaming.manager import StreamingManager, StreamPublisher
from services.voiced_chat import VoicePipeline, Voicing

__all__ = ["ChatCaller", "ChatPlan", "ChatResult", "ChatService"]

_log = logging.getLogger("switchyard.chat")


ChatCaller = Caller
"""Who asks (the attempt runner's ``Caller``; the chat name is kept for callers of the chat service)."""


@frozen
class ChatPlan:
    """A validated request and the models to try, primary first."""

    request: ChatRequest
    candidates: Candidates

    @property
    def primary(self) -> ModelSpec:
        return self.candidates.primary


@frozen
class ChatResult:
    """A whole answer and the ``meta`` saying who served it."""

    response: ProviderResponse
    meta: dict[str, JsonValue]


class _ChatAttempt:
    """One attempt's body for the runner: the vendor's events (assembled as they pass), or with ``whole_s`` set the
    one answer of a call made without streaming (bounded by ``whole_s``), and the attempt's bill."""

    def __init__(
        self,
        provider: TextProvider,
        spec: ModelSpec,
        request: ChatRequest,
        tokens: TokenCounter | None,
        whole_s: float | None = None,
    ) -> None:
        prepared = prepare_request(request, spec)
        self.request = prepared.request
        self.dropped = prepared.dropped
        self.assembler = ResponseAssembler()
        self._provider = provider
        self._spec = spec
        self._tokens = tokens
        self._whole_s = whole_s

    async def outputs(self) -> AsyncIterator[ProviderEvent | Completion]:
        if self._whole_s is not None:
            completion = await self._provider.complete(self.request, self._spec, timeout_s=self._whole_s)
            self.assembler.take(completion)
            yield completion
            return
        events = self._provider.stream(self.request, self._spec)
        try:
            async for event in events:
                self.assembler.feed(event)
                yield event
        finally:
            aclose = getattr(events, "aclose", None)  # the port promises an iterator; SDK streams hold a connection
            if aclose is not None:
                await aclose()

    async def bill(self, attempt: Attempt, outcome: str) -> Bill:
        usage, estimated = self.assembler.usage, False
        if outcome == "cancelled" or (outcome != "done" and attempt.committed):
            usage, estimated = await self._bill_cut()
        return Bill(usage.units(), cost_usd(usage.units(), self._spec), estimated)

    async def _bill_cut(self) -> tuple[Usage, bool]:
        """Usage of an attempt cut short: the vendor's where it reported, else an estimate (``chat_billing``).

        Counted in a worker thread: tiktoken takes ~0.1 s per MB of text (0.5 s for a pathological 1 MB), and its
        first use loads the encoding (~0.4 s); a body may be 1 MB. A failure to count never loses the record."""
        assembler = self.assembler
        reported = assembler.usage if assembler.usage_reported else None
        if self._tokens is None:
            return assembler.usage, False
        try:
            return await asyncio.to_thread(
                bill_cut_attempt, self._tokens, self.request, Delivered.of(assembler), reported
            )
        except Exception:  # noqa: BLE001 - bill what the vendor said rather than drop the record; it is logged
            _log.exception("usage_estimate_failed", extra={"model": self._spec.qualified_id})
            return assembler.usage, False


class ChatService:
    """Chat over the attempt runner, with the streaming manager for ``stream: true``."""

    def __init__(
        self,
        runner: AttemptRunner,
        streams: StreamingManager | None,
        *,
        tokens: TokenCounter | None = None,
        quotas: QuotaGate | None = None,
        voice: VoicePipeline | None = None,
    ) -> None:
        self.runner = runner
        self._streams = streams
        self._tokens = tokens
        self._voice = voice  # voiced chat (issue 12): a stream whose request asks for `speech`
        self._quotas = quotas or QuotaGate.unlimited()

    @property
    def registry(self) -> ProviderRegistry:
        """The registry the runner resolves models in."""
        return self.runner.registry

    @property
    def streams(self) -> StreamingManager:
        """The streaming manager chat streams run in (for delivery: subscribe, cancel, resume)."""
        if self._streams is None:
            raise ServiceUnavailableError("streaming is not available in this process")
        return self._streams

    def plan(self, request: ChatRequest) -> ChatPlan:
        """Check the request and resolve its models: 422 for semantic errors, 404 unknown, 422 missing capability."""
        _check_semantics(request)
        needed = required_capabilities(request)
        return ChatPlan(
            request, self.runner.candidates(request.model, capabilities=needed, fallbacks=request.fallbacks)
        )

    async def run(
        self, plan: ChatPlan, caller: ChatCaller, *, stream_id: StreamId | None = None, streamed: bool = True
    ) -> AsyncGenerator[ChatItem, None]:
        """Yield ``Served``, the serving attempt's events, then ``Completed``; raise the error that ended it.

        ``streamed=False``: each attempt is one call made without streaming, so ``Served`` comes straight before
        ``Completed``, with no events between."""
        started = self.runner.clock()
        current: list[_ChatAttempt] = []  # the attempt in flight (the runner starts them one after another)
        whole_s = None if streamed else self.runner.policy.whole_call_s

        def start(provider: TextProvider, spec: ModelSpec) -> _ChatAttempt:
            current[:] = [_ChatAttempt(provider, spec, plan.request, self._tokens, whole_s)]
            return current[0]

        served: Served | None = None
        steps_of = self.runner.run(plan.candidates, caller, TEXT_PORT, start, stream_id=stream_id, silence_s=whole_s)
        async with aclosing(steps_of) as steps:
            async for step in steps:
                body = current[0]
                if isinstance(step, Finished):
                    attempt = step.attempt
                    served = served or Served(attempt.spec, plan.primary, attempt.retries_total, body.dropped)
                    response = body.assembler.response(
                        attempt.spec,
                        latency_ms=(self.runner.clock() - started) * 1000,
                        cost_usd=step.bill.cost_usd,
                    )
                    yield Completed(response, served, _elapsed_ms(started, attempt.first_output_at))
                    return
                if served is None:
                    attempt = step.attempt
                    served = Served(attempt.spec, plan.primary, attempt.retries_total, body.dropped)
                    yield served
                if not isinstance(step.value, Finish | Completion):
                    yield step.value

    # --- the two ways to consume a run ------------------------------------------------------------------------

    async def complete(self, request: ChatRequest, caller: ChatCaller) -> ChatResult:
        """Run ``request`` to the end and return the response (``stream: false``): the vendor is called without
        streaming, since nobody reads the answer as it grows (and no stream is started: nothing could resume it)."""
        if request.speech is not None:
            raise ValidationError("speech", "voices a streamed answer only: set stream to true")
        plan, admission = await self.admit(self.plan(request), caller)
        async with admission, aclosing(self.run(plan, caller, streamed=False)) as items:
            async for item in items:
                if isinstance(item, Completed):
                    return ChatResult(item.response, {**item.served.meta(), "ttft_ms": item.ttft_ms})
        raise ProviderError(plan.primary.provider, "the provider ended without an answer")  # pragma: no cover

    async def start_stream(self, request: ChatRequest, caller: ChatCaller) -> StreamId:
        """Validate and resolve now (errors surface as HTTP errors), then stream through the StreamingManager."""
        streams = self.streams
        planned = self.plan(request)
        speech = None if request.speech is None else self._voice_pipeline().plan(request.speech)  # 4xx naming it
        plan, admission = await self.admit(planned, caller)

        async def produce(publisher: StreamPublisher) -> Mapping[str, JsonValue] | None:
            # Silent vendors end as provider_timeout (retried within the deadline), as when not streaming.
            policy = self.runner.policy
            publisher.expect_silence(max(policy.idle_timeout_s, policy.deadline_s))
            async with aclosing(admission.guard(self.run(plan, caller, stream_id=publisher.stream_id))) as items:
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
        voicing: Voicing | None = None
        try:
            if speech is not None:  # the voice's dispatcher holds completion: done once text and speech are
                voicing = await self._voice_pipeline().admit(speech, caller, max_tokens=request.max_tokens)
            producer = produce if voicing is None else voicing.dispatcher(produce)
            return await streams.start(owner=caller.customer_id, producer=producer, kind="chat", meta=meta)
        except BaseException:
            await admission.release()  # the stream never started: its reservation goes back now
            if voicing is not None:
                await voicing.release()
            raise

    def _voice_pipeline(self) -> VoicePipeline:
        if self._voice is None:
            raise ValidationError("speech", "voiced chat is not available on this server")
        return self._voice

    async def admit(self, plan: ChatPlan, caller: ChatCaller) -> tuple[ChatPlan, Admission]:
        """``plan`` as the caller's key and quotas allow it, and its admission (403 a model the key may not use, 429
        over a limit: before any vendor call). Settle the admission when the call ends."""
        request = plan.request
        admission = await self._quotas.admit(
            caller, plan.candidates, lambda default: chat_units(request, self._tokens, default)
        )
        return ChatPlan(request, admission.candidates), admission


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
