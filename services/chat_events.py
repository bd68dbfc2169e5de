"""Use case helpers: what a chat run yields, how it becomes stream events, and how a whole response is assembled.

A run yields ``Served`` once (just before the first event of the attempt that serves), then the provider's
normalized events, then ``Completed``. ``stream_event`` maps each item to the stream's event type and JSON payload,
so the SSE/WebSocket stream, the CLI and tests all speak the same events.
"""

from __future__ import annotations

from typing import TypeAlias

from attrs import frozen

from domain.catalog import ModelSpec
from domain.chat import (
    ProviderEvent,
    ProviderResponse,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
)
from domain.completion import CompletionAssembler
from domain.types import JsonValue

__all__ = ["ChatItem", "Completed", "ResponseAssembler", "Served", "done_payload", "stream_event", "usage_payload"]


@frozen
class Served:
    """Which model serves the request (after any retries and fallbacks)."""

    model: ModelSpec
    requested: ModelSpec
    retries: int = 0
    dropped_params: tuple[str, ...] = ()

    @property
    def fallback_used(self) -> str | None:
        """The serving model when it is not the requested one."""
        return None if self.model == self.requested else self.model.qualified_id

    def meta(self) -> dict[str, JsonValue]:
        """The response ``meta``/``start`` fields saying who served."""
        return {
            "model": self.model.qualified_id,
            "provider": self.model.provider,
            "requested_model": self.requested.qualified_id,
            "fallback_used": self.fallback_used,
            "retries": self.retries,
            "dropped_params": list(self.dropped_params),
        }


@frozen
class Completed:
    """The run finished: the assembled response and who served it."""

    response: ProviderResponse
    served: Served
    ttft_ms: float | None = None


ChatItem: TypeAlias = Served | ProviderEvent | Completed


def usage_payload(usage: Usage) -> dict[str, JsonValue]:
    """Token counts as JSON."""
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }


def stream_event(item: ChatItem) -> tuple[str, dict[str, JsonValue]] | None:
    """The stream event (type, payload) for ``item``; ``None`` for items that are not sent on their own
    (``Finish`` travels in ``done``; ``Completed`` is the producer's return value, i.e. the ``done`` payload)."""
    if isinstance(item, Served):
        return "start", item.meta()
    if isinstance(item, TextDelta):
        return "text", {"text": item.text}
    if isinstance(item, ReasoningDelta):
        return "reasoning", {"text": item.text}
    if isinstance(item, ToolCallStart):
        return "tool_call", {"phase": "start", "index": item.index, "id": item.id, "name": item.name}
    if isinstance(item, ToolCallDelta):
        return "tool_call", {"phase": "delta", "index": item.index, "id": item.id, "arguments": item.arguments}
    if isinstance(item, ToolCallEnd):
        return "tool_call", {"phase": "end", "index": item.index, "id": item.id}
    if isinstance(item, UsageReport):
        return "usage", usage_payload(item.usage)
    return None


def done_payload(completed: Completed) -> dict[str, JsonValue]:
    """The ``done`` event's payload: how it ended and what it cost, without repeating the text."""
    response = completed.response
    return {
        **completed.served.meta(),
        "finish_reason": response.finish_reason,
        "usage": usage_payload(response.usage),
        "latency_ms": response.latency_ms,
        "ttft_ms": completed.ttft_ms,
        "cost_usd": response.cost_usd,
        "tool_calls": len(response.tool_calls),
    }


class ResponseAssembler(CompletionAssembler):
    """The domain's fold of one attempt's events (``CompletionAssembler``), rendered as the chat response."""

    def response(self, model: ModelSpec, *, latency_ms: float, cost_usd: float | None) -> ProviderResponse:
        """The assembled ``ProviderResponse`` (finish ``tool_calls`` when calls came without a finish reason)."""
        return ProviderResponse(
            text=self.text,
            model=model.qualified_id,
            provider=model.provider,
            finish_reason=self.final_reason,
            usage=self.usage,
            tool_calls=self.tool_calls(),
            reasoning=self.reasoning,
            latency_ms=round(latency_ms, 3),
            cost_usd=cost_usd,
        )
