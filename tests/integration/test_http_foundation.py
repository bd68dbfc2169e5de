"""The HTTP boundary: envelope, body validation, error table, request ids, readiness, OpenAPI."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from attrs import frozen
from dependency_injector import providers
from openapi_spec_validator import validate
from quart import Blueprint, Quart, Response
from quart.typing import TestClientProtocol

from container import Container
from entrypoints.http.app import create_app
from entrypoints.http.envelope import ApiResponse, api_ok
from entrypoints.http.serialization import CONVERTER, json_response, read_body
from settings import Settings
from tests.support.app import auth_headers, make_container, make_settings


@frozen
class Part:
    kind: str
    text: str


@frozen
class EchoBody:
    model: str
    parts: list[Part]
    temperature: float | None = None
    stream: bool = False


probe = Blueprint("probe", __name__)


@probe.post("/api/v1/probe/echo")
async def echo() -> Response:
    body = await read_body(EchoBody, max_bytes=1024)
    return json_response(api_ok(body))


@probe.get("/api/v1/probe/crash")
async def crash() -> Response:
    raise RuntimeError("database password=hunter2 at /srv/app.py line 3")


class FailingCheck:
    name = "redis"

    async def check(self) -> None:
        raise ConnectionRefusedError("nope")


class OkCheck:
    name = "database"

    async def check(self) -> None:
        return None


async def _started(container: Container) -> AsyncIterator[TestClientProtocol]:
    app = create_app(container)
    app.register_blueprint(probe)
    async with app.test_app():
        yield app.test_client()
    container.unwire()


@pytest.fixture
async def probe_client(tmp_path: Any) -> AsyncIterator[TestClientProtocol]:
    settings = make_settings(tmp_path, limits={"max_body_bytes": 1024})
    async for client in _started(make_container(settings)):
        yield client


async def test_envelope_round_trips_through_the_converter() -> None:
    """An ApiResponse unstructures to JSON data and structures back to an equal object."""
    original = ApiResponse(code=200, success=True, message="ok", data=EchoBody("m", [Part("text", "hi")]))
    data = CONVERTER.unstructure(original)
    assert data["data"]["parts"] == [{"kind": "text", "text": "hi"}]
    assert CONVERTER.structure(data, ApiResponse[EchoBody]) == original


async def test_valid_body_is_structured_and_echoed(probe_client: TestClientProtocol) -> None:
    """A good body comes back inside the success envelope with a request id in meta."""
    response = await probe_client.post(
        "/api/v1/probe/echo", json={"model": "m", "parts": [{"kind": "text", "text": "hi"}]}, headers=auth_headers()
    )
    body = await response.get_json()
    assert response.status_code == 200
    assert body["success"] is True
    assert body["code"] == 200
    assert body["data"]["parts"][0]["text"] == "hi"
    assert body["meta"]["request_id"] == response.headers["X-Request-ID"]


async def test_bad_body_gives_422_with_every_field_error(probe_client: TestClientProtocol) -> None:
    """Wrong types, a missing field and an unknown key are all reported with their paths."""
    response = await probe_client.post(
        "/api/v1/probe/echo",
        json={"parts": [{"kind": 3, "text": "x", "colour": "red"}], "temperature": "hot", "strem": True},
        headers=auth_headers(),
    )
    body = await response.get_json()
    assert response.status_code == 422
    locs = {error["loc"] for error in body["data"]["errors"]}
    assert {"$.model", "$.parts[0].kind", "$.parts[0]", "$.temperature", "$"} <= locs
    messages = " ".join(error["msg"] for error in body["data"]["errors"])
    assert "strem" in messages
    assert "colour" in messages


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 422),
        (b"model=x", "application/x-www-form-urlencoded", 415),
        (b'{"model": "' + b"x" * 2000 + b'", "parts": []}', "application/json", 413),
    ],
)
async def test_unparseable_bodies_get_clear_4xx(
    probe_client: TestClientProtocol, data: bytes, content_type: str, status: int
) -> None:
    """Non-JSON 400, non-object 422, wrong content type 415, oversized 413, each in the envelope."""
    response = await probe_client.post(
        "/api/v1/probe/echo", data=data, headers={"Content-Type": content_type, **auth_headers()}
    )
    body = await response.get_json()
    assert response.status_code == status
    assert body["success"] is False
    assert body["code"] == status


async def test_unexpected_exception_gives_500_envelope_without_internals(probe_client: TestClientProtocol) -> None:
    """No stack trace, no message, no secret: just the request id to quote."""
    response = await probe_client.get("/api/v1/probe/crash", headers={**auth_headers(), "X-Request-ID": "req-42"})
    text = await response.get_data(as_text=True)
    assert response.status_code == 500
    assert "hunter2" not in text
    assert "Traceback" not in text
    assert "app.py" not in text
    body = await response.get_json()
    assert body["meta"]["request_id"] == "req-42"
    assert body["data"]["error"] == "internal_error"


async def test_request_id_is_accepted_when_well_formed_else_generated(probe_client: TestClientProtocol) -> None:
    """A sane client id is echoed; a malformed one is replaced."""
    good = await probe_client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert good.headers["X-Request-ID"] == "abc-123"
    bad = await probe_client.get("/health", headers={"X-Request-ID": "has spaces and\ttabs"})
    assert bad.headers["X-Request-ID"] != "has spaces and\ttabs"
    assert len(bad.headers["X-Request-ID"]) == 32
    assert "app;dur=" in good.headers["Server-Timing"]


async def test_unknown_route_and_wrong_method_use_the_envelope(probe_client: TestClientProtocol) -> None:
    """Framework errors are enveloped too."""
    missing = await probe_client.get("/nope")
    assert missing.status_code == 404
    assert (await missing.get_json())["success"] is False
    wrong = await probe_client.delete("/health")
    assert wrong.status_code == 405
    assert (await wrong.get_json())["code"] == 405


async def test_api_routes_require_a_bearer_token(probe_client: TestClientProtocol) -> None:
    """/api/ without a token: 401 with WWW-Authenticate and the envelope."""
    response = await probe_client.post("/api/v1/probe/echo", json={"model": "m", "parts": []})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert (await response.get_json())["data"]["error"] == "authentication_error"


async def test_ready_names_the_service_that_is_down(settings: Settings) -> None:
    """/ready answers 503 naming the backing service that does not answer."""
    container = make_container(settings)
    container.health_checks.override(providers.Object([OkCheck(), FailingCheck()]))
    async for client in _started(container):
        response = await client.get("/ready")
        body = await response.get_json()
        assert response.status_code == 503
        assert body["data"]["context"]["down"] == ["redis"]
        assert "redis" in body["message"]


async def test_ready_is_503_while_the_server_drains(app: Quart, client: TestClientProtocol) -> None:
    """Once shutdown began (``drain``), /ready says so, so load balancers stop routing new work here."""
    assert (await client.get("/ready")).status_code == 200
    manager = await app.extensions["container"].streaming_manager()
    await manager.drain(0.0)
    response = await client.get("/ready")
    assert response.status_code == 503
    assert (await response.get_json())["data"]["context"]["down"] == ["shutdown"]


async def test_ready_is_200_on_the_embedded_default(client: TestClientProtocol) -> None:
    """SQLite answers, so the embedded default is ready."""
    response = await client.get("/ready")
    assert response.status_code == 200
    assert (await response.get_json())["data"]["services"][0]["name"] == "database"


async def test_openapi_is_valid_and_lists_every_route(app: Quart, client: TestClientProtocol) -> None:
    """The generated document validates as OpenAPI 3.1 and covers every registered route."""
    response = await client.get("/openapi.json")
    spec = await response.get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    documented = set(spec["paths"])
    for rule in app.url_map.iter_rules():
        if rule.endpoint != "static":
            # ``<path:model_id>`` is documented as ``{model_id}``: OpenAPI has no converters
            assert re.sub(r"<(?:[a-z_]+:)?(\w+)>", r"{\1}", rule.rule) in documented
    health = spec["paths"]["/health"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert health["$ref"].endswith("ApiResponse_Liveness_")
    docs = await client.get("/docs")
    assert "openapi.json" in await docs.get_data(as_text=True)
