"""Blueprint: liveness (``/health``) and readiness (``/ready``), both unauthenticated."""

from __future__ import annotations

from attrs import frozen
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response

from domain.errors import ServiceUnavailableError
from entrypoints.http.envelope import api_ok
from entrypoints.http.openapi import documented
from entrypoints.http.serialization import json_response, unstructure
from services.readiness import ReadinessReport, ReadinessService
from services.streaming import StreamingManager

__all__ = ["Liveness", "blueprint"]

blueprint = Blueprint("health", __name__)


@frozen
class Liveness:
    """The process answers."""

    status: str
    version: str


@blueprint.get("/health")
@inject
@documented("Liveness: the process answers", response=Liveness, tags=["ops"], errors=())
async def health(version: str = Provide["version"]) -> Response:
    return json_response(api_ok(Liveness(status="ok", version=version)))


@blueprint.get("/ready")
@inject
@documented(
    "Readiness: every configured backing service answers and the process is not shutting down",
    response=ReadinessReport,
    tags=["ops"],
    errors=(503,),
)
async def ready(
    readiness: ReadinessService = Provide["readiness"], streams: StreamingManager = Provide["streaming_manager"]
) -> Response:
    if streams.draining:  # shutting down: load balancers stop sending traffic here while running streams finish
        raise ServiceUnavailableError("not ready: shutting down", context={"down": ["shutdown"]})
    report = await readiness.report()
    if not report.ready:
        raise ServiceUnavailableError(
            f"not ready: {', '.join(report.down)} down", context={"down": report.down, **unstructure(report)}
        )
    return json_response(api_ok(report))
