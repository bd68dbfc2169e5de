"""Domain: one usage record per provider call, and aggregated totals."""

from __future__ import annotations

from datetime import datetime

from attrs import field, frozen

__all__ = ["UsageRecord", "UsageTotal"]


@frozen
class UsageRecord:
    """What one provider call consumed and how it ended (``outcome``: ``done``, ``cancelled`` or an error code).

    ``estimated`` is true when the token counts are not (all) the vendor's own: a call cut before the vendor
    reported usage (cancelled, or failed after its first output) is billed on a tokenizer's count of the request and
    of the output delivered (see ``services/chat_billing.py``)."""

    request_id: str
    customer_id: str
    capability: str
    provider: str
    model: str
    outcome: str
    created_at: datetime
    stream_id: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    audio_seconds: float = 0.0
    characters: int = 0
    images: int = 0
    video_seconds: float = 0.0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    retries: int = 0
    fallback_used: str | None = None
    estimated: bool = False
    id: str = field(factory=str)


@frozen
class UsageTotal:
    """Totals for one group (a model, a provider, a capability or a day), in every usage unit."""

    group: str
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    estimated: int = 0
    """How many of the ``requests`` were billed on estimated counts."""
    images: int = 0
    characters: int = 0
    audio_seconds: float = 0.0
    video_seconds: float = 0.0
