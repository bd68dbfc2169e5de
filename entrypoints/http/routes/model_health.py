"""Blueprint: ``GET /api/v1/health/models`` (admin), each enabled model's circuit breaker, error rate and latency.

``/ready`` stays about Switchyard's own dependencies; a vendor that is down shows here, not there.
"""

from __future__ import annotations

from attrs import frozen
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response

from domain.health import BreakerView
from entrypoints.http.auth import require_scopes
from entrypoints.http.envelope import api_ok
from entrypoints.http.openapi import documented
from entrypoints.http.serialization import json_response
from services.breakers import Breakers
from services.registry import ProviderRegistry

__all__ = ["ModelHealth", "ModelHealthReport", "blueprint"]

blueprint = Blueprint("model_health", __name__)


@frozen
class ModelHealth:
    """One model's breaker (``closed``, ``half_open`` or ``open``; an open one whose cool-down is over shows as
    ``half_open``: its next call probes), its vendor failures over the breaker window and its recent successful
    attempts' latency (nearest-rank percentiles of the last few)."""

    model: str
    provider: str
    state: str
    retry_after_s: float
    consecutive_failures: int
    window_calls: int
    window_failures: int
    error_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_samples: int


@frozen
class ModelHealthReport:
    """Every enabled model, in catalog order; ``breakers_enabled`` is false when ``breaker.enabled`` is off."""

    breakers_enabled: bool
    models: list[ModelHealth]


def _health(model: str, provider: str, seen: BreakerView) -> ModelHealth:
    rate = seen.error_rate
    return ModelHealth(
        model=model,
        provider=provider,
        state=seen.state.value,
        retry_after_s=seen.retry_after_ms / 1000,
        consecutive_failures=seen.consecutive_failures,
        window_calls=seen.calls,
        window_failures=seen.failures,
        error_rate=None if rate is None else round(rate, 4),
        latency_p50_ms=seen.latency_ms(0.5),
        latency_p95_ms=seen.latency_ms(0.95),
        latency_samples=len(seen.latencies_ms),
    )


@blueprint.get("/api/v1/health/models")
@inject
@require_scopes("admin")
@documented(
    "Vendor health: each enabled model's circuit breaker, recent error rate and latency (admin scope)",
    response=ModelHealthReport,
    tags=["ops"],
    errors=(401, 403, 503),
)
async def model_health(
    registry: ProviderRegistry = Provide["provider_registry"], breakers: Breakers = Provide["breakers"]
) -> Response:
    specs = registry.models()
    views = await breakers.views(specs)
    models = [_health(spec.qualified_id, spec.provider, views[spec.qualified_id]) for spec in specs]
    return json_response(api_ok(ModelHealthReport(breakers.enabled, models)))
