"""``/openapi.json`` tells the truth: schemathesis generates requests from it (valid and invalid, bounded) and runs
them against the app in-process with a valid bearer token; every answer must be a documented status, of the
documented content type, matching the documented schema, and never a server error. WebSocket operations cannot be
driven this way; their documented handshake statuses are pinned by hand instead."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from quart import Quart
from quart.typing import TestClientProtocol
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from entrypoints.http.app import create_app
from tests.support.app import auth_headers, make_container, make_settings

CHECKS: list[Callable[..., Any]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_MODE = 12  # per operation, positive and negative each: about 20 s for the whole API on 2 cores
WS_SKIP_REASON = "a WebSocket route: schemathesis speaks HTTP only (its handshake statuses are pinned below)"


@pytest.fixture
def api_schema(tmp_path: Path) -> Iterator[OpenApiSchema]:
    """The app's own document, loaded from ``/openapi.json``; schemathesis runs the app's lifespan in its thread."""
    container = make_container(make_settings(tmp_path))
    app = create_app(container)
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        asgi.shutdown_lifespans()
        container.unwire()


def _failures_of(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> list[str]:
    found: list[str] = []

    @settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests every run: a failure here is reproducible, never flaky
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def exercise(case: Any) -> None:
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except FailureGroup as group:
            found.extend(
                f"{operation.label} ({mode.value}): {failure.title}: {failure}" for failure in group.exceptions
            )

    try:
        exercise()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE, operation.label  # nothing to get wrong: no parameters, no body
    return found


@pytest.mark.slow
def test_every_http_operation_conforms_to_the_document(api_schema: OpenApiSchema) -> None:
    """No generated request, valid or not, gets a 5xx, an undocumented status or content type, or a body that does
    not match the documented schema; WebSocket operations are skipped (reason in ``WS_SKIP_REASON``)."""
    headers = auth_headers()
    failures: list[str] = []
    exercised: list[str] = []
    skipped: list[str] = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), f"the document has an operation schemathesis cannot read: {result.err()}"
        operation = result.ok()
        if operation.definition.raw.get("x-websocket"):
            skipped.append(operation.label)
            continue
        exercised.append(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures.extend(_failures_of(operation, mode, headers))
    sockets = ["GET /api/v1/ws/chat", "GET /api/v1/ws/realtime", "GET /api/v1/ws/streams", "GET /api/v1/ws/transcribe"]
    assert sorted(skipped) == sockets, WS_SKIP_REASON
    assert "POST /api/v1/chat" in exercised
    assert "GET /api/v1/usage" in exercised
    assert failures == []


async def _spec(client: TestClientProtocol) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    spec: dict[str, Any] = await response.get_json()
    return spec


async def test_usage_documents_from_as_the_server_reads_it(app: Quart) -> None:
    """The usage query parameter is documented as ``from`` (not ``from_``), and ``from`` is what the server reads."""
    client = app.test_client()
    parameters = (await _spec(client))["paths"]["/api/v1/usage"]["get"]["parameters"]
    assert [p["name"] for p in parameters if p["in"] == "query"] == ["from", "to", "group_by"]
    response = await client.get("/api/v1/usage?from=not-a-date", headers=auth_headers())
    assert response.status_code == 422
    assert (await response.get_json())["data"]["errors"][0]["loc"] == "$.from"
    response = await client.get("/api/v1/usage?from_=2026-11-01", headers=auth_headers())
    assert response.status_code == 422  # the attribute name is not a wire name


async def test_request_objects_are_documented_as_closed(app: Quart) -> None:
    """Objects a request reads say ``additionalProperties: false``, as the strict converter refuses unknown keys."""
    schemas = (await _spec(app.test_client()))["components"]["schemas"]
    for name in ("ChatRequest", "Message", "ContentPart", "ToolSpec", "ToolChoice", "ResponseFormat"):
        assert schemas[name]["additionalProperties"] is False, name


@pytest.mark.parametrize(
    "path", ["/api/v1/ws/chat", "/api/v1/ws/streams", "/api/v1/ws/transcribe", "/api/v1/ws/realtime"]
)
async def test_websocket_handshake_statuses_are_the_documented_ones(app: Quart, path: str) -> None:
    """Each status a socket route's handshake can answer (400 for a plain GET, 401 for a refused bearer token, 101
    on upgrade) is documented, and nothing else is."""
    client = app.test_client()
    documented = set((await _spec(client))["paths"][path]["get"]["responses"])
    assert documented == {"101", "400", "401"}
    plain = await client.get(path, headers=auth_headers())
    assert plain.status_code == 400
    assert plain.content_type == "application/json"
    refused: int | None = None
    try:
        async with client.websocket(path, headers={"Authorization": "Bearer not-a-token"}) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            await ws.receive()
    except Exception as exc:  # quart's WebsocketResponseError carries the HTTP answer to the handshake
        refused = getattr(getattr(exc, "response", None), "status_code", None)
    assert refused == 401
    async with client.websocket(path, headers=auth_headers()) as ws:
        await ws.send(json.dumps({"type": "ping"}) if path.endswith("streams") else "{not json")
        assert json.loads(await ws.receive())["type"] in ("pong", "error")  # upgraded (101) and serving
