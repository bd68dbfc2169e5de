"""Blueprint: ``GET /metrics`` in the Prometheus text format (404 when ``http.metrics_enabled`` is off).

Outside ``/api/``, so the global auth hook does not apply: with ``auth.metrics_require_auth`` the route checks the
bearer token itself.
"""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response, g, request

from domain.auth import AuthContext
from domain.errors import NotFoundError
from entrypoints.http.auth import bearer_token
from entrypoints.http.openapi import documented
from ports.auth import TokenVerifier
from ports.metrics_export import MetricsExporter
from settings import Settings

__all__ = ["blueprint"]

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
@inject
@documented(
    "Prometheus metrics (text exposition format)",
    tags=["ops"],
    errors=(401, 404),
    description="Bearer token required when auth.metrics_require_auth is true.",
)
async def metrics(
    exporter: MetricsExporter | None = Provide["metrics_exporter"],
    settings: Settings = Provide["settings"],
    verifier: TokenVerifier = Provide["token_verifier"],
) -> Response:
    if exporter is None:
        raise NotFoundError("metrics are disabled (http.metrics_enabled = false)")
    # The auth hook may already have checked it (it protects /metrics too when the flag is on): verify once.
    if settings.auth.metrics_require_auth and not isinstance(getattr(g, "auth", None), AuthContext):
        await verifier.verify(bearer_token(request.headers.get("Authorization")))
    page = exporter.render()
    return Response(page.body, status=200, content_type=page.content_type)
