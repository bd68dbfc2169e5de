"""HTTP boundary: OpenAPI 3.1 generated from the routes and the same attrs models the handlers use.

Routes describe themselves with ``@documented(...)``; ``build_spec`` walks the app's URL map, so a route that forgets
the decorator still appears (with a generic envelope), and schemas come from ``msgspec.json.schema_components``
over the attrs classes: never a hand-kept copy. What the document adds to those schemas it takes from the same place
the server does: a field's wire name (``WIRE_NAME`` metadata, e.g. ``from``), and ``additionalProperties: false`` on
every object a request reads, because the converter forbids unknown keys.

A front door that speaks a vendor's wire format (``entrypoints/http/doors``) says so with ``wire=WireFormat(...)``:
its 200 body is the response model itself (no envelope), its errors are the door's error body, and its request
objects stay open, as the vendor's own server ignores fields it does not know. Paths under ``/api/`` and ``/v1/``
(``auth.PROTECTED_PREFIXES``) carry the bearer security requirement.

A WebSocket route documents its handshake, the only HTTP exchange it has: 101 on upgrade, 400 for a plain request
that is not an upgrade, and on ``/api/`` 401 for a bearer token refused at the handshake. Everything after the
upgrade (auth by message, expiry, bad messages) is a close code or an ``error`` message, said in its description.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import msgspec
from attrs import field, frozen
from quart import Quart

from entrypoints.http.auth import PROTECTED_PREFIXES
from entrypoints.http.envelope import ApiResponse, ErrorBody
from entrypoints.http.serialization import wire_names

__all__ = ["OperationDoc", "WireFormat", "build_spec", "documented"]

F = TypeVar("F", bound=Callable[..., Any])
_ATTR: Final = "__switchyard_openapi__"
_PARAM: Final = re.compile(r"<(?:[a-z_]+:)?([A-Za-z_][A-Za-z0-9_]*)>")
_DEFAULT_ERRORS: Final = (400, 401, 404, 422, 500)
_REF_PREFIX: Final = "#/components/schemas/"
_WS_DESCRIPTION: Final = (
    "WebSocket endpoint (upgrade with GET). HTTP statuses are the handshake's: 101 on upgrade, 400 for a request "
    "that is not a WebSocket upgrade, 401 for a bearer token refused at the handshake. After the upgrade, failures "
    "are close codes from the error table (4401 token refused or expired, 4400 malformed, 1009 too large, 1011 "
    "internal) or error messages on the socket."
)


@frozen
class WireFormat:
    """A front door's own wire format: bodies as the vendor sends them, ``error`` as the body of every error."""

    error: type[Any]


@frozen
class OperationDoc:
    """What one route says about itself."""

    summary: str
    request: type[Any] | None = None
    response: Any = None
    query: type[Any] | None = None
    tags: tuple[str, ...] = ()
    errors: tuple[int, ...] = _DEFAULT_ERRORS
    streaming: bool = False
    description: str = ""
    headers: tuple[str, ...] = field(default=())
    wire: WireFormat | None = None
    success: int = 200
    """The status of a successful answer (202 for work accepted to run later)."""


def documented(
    summary: str,
    *,
    request: type[Any] | None = None,
    response: Any = None,
    query: type[Any] | None = None,
    tags: Sequence[str] = (),
    errors: Sequence[int] = _DEFAULT_ERRORS,
    streaming: bool = False,
    description: str = "",
    headers: Sequence[str] = (),
    wire: WireFormat | None = None,
    success: int = 200,
) -> Callable[[F], F]:
    """Attach an ``OperationDoc`` to a view function (place it under ``@inject``).

    ``errors`` are the HTTP statuses an HTTP route answers besides 200; a WebSocket route's statuses are those of
    its handshake, the same for every socket (see the module docstring), so it leaves ``errors`` out."""
    doc = OperationDoc(
        summary=summary,
        request=request,
        response=response,
        query=query,
        tags=tuple(tags),
        errors=tuple(errors),
        streaming=streaming,
        description=description,
        headers=tuple(headers),
        wire=wire,
        success=success,
    )

    def decorate(func: F) -> F:
        setattr(func, _ATTR, doc)
        return func

    return decorate


def _doc_for(view: Callable[..., Any]) -> OperationDoc | None:
    seen: Callable[..., Any] | None = view
    while seen is not None:
        doc = getattr(seen, _ATTR, None)
        if isinstance(doc, OperationDoc):
            return doc
        seen = getattr(seen, "__wrapped__", None)
    return None


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": _present(prop)}
        for name, prop in schema.get("properties", {}).items()
    ]


def _present(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a value, never JSON null: ``X | None = None`` documents as an optional ``X``."""
    options = [option for option in prop.get("anyOf", []) if option != {"type": "null"}]
    if len(options) != 1 or prop.get("default", ...) is not None:
        return prop
    return {**{k: v for k, v in prop.items() if k not in ("anyOf", "default")}, **options[0]}


def _rename_properties(component: dict[str, Any], renames: dict[str, str]) -> None:
    """Properties under their wire names, as the converter reads and writes them."""
    properties = component.get("properties", {})
    component["properties"] = {renames.get(name, name): prop for name, prop in properties.items()}
    if "required" in component:
        component["required"] = [renames.get(name, name) for name in component["required"]]


def _close_inputs(components: dict[str, Any], roots: list[dict[str, Any]]) -> None:
    """``additionalProperties: false`` on every object schema reachable from ``roots`` (strict input)."""
    seen: set[str] = set()
    pending: list[Any] = list(roots)
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF_PREFIX) and ref not in seen:
                seen.add(ref)
                component = components[ref.removeprefix(_REF_PREFIX)]
                if "properties" in component:
                    component.setdefault("additionalProperties", False)
                pending.append(component)
            pending.extend(node.values())


def _ws_responses(path: str, api_prefix: str | tuple[str, ...], error_ref: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "101": {"description": "switching protocols: the socket is open"},
        "400": {"description": "not a WebSocket upgrade request", "content": _json(error_ref)},
    }
    if path.startswith(api_prefix):
        responses["401"] = {"description": "bearer token refused at the handshake", "content": _json(error_ref)}
    return responses


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def build_spec(
    app: Quart, *, title: str, version: str, api_prefix: str | tuple[str, ...] = PROTECTED_PREFIXES
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for every route registered on ``app``."""
    operations: list[tuple[str, str, OperationDoc, list[str], bool]] = []
    models: list[Any] = [ApiResponse[ErrorBody]]
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        doc = _doc_for(view) or OperationDoc(summary=rule.endpoint.replace("_", " ").replace(".", ": "))
        path = _PARAM.sub(r"{\1}", rule.rule)
        params = _PARAM.findall(rule.rule)
        is_ws = bool(getattr(rule, "websocket", False))
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operations.append((path, method.lower(), doc, params, is_ws))
        for model in (doc.request, doc.query):
            if model is not None:
                models.append(model)
        if doc.response is not None:
            models.append(doc.response if doc.wire else ApiResponse[doc.response])  # type: ignore[name-defined]
        if doc.wire is not None:
            models.append(doc.wire.error)

    refs, components = msgspec.json.schema_components(models, ref_template=_REF_PREFIX + "{name}")
    ref_of = dict(zip(map(id, models), refs, strict=True))
    error_ref = refs[0]
    for model in models:
        renames = wire_names(model)
        if renames:
            _rename_properties(components[model.__name__], renames)
    closed = [doc.request for _p, _m, doc, _a, _w in operations if doc.request and doc.wire is None]
    _close_inputs(components, [ref_of[id(request)] for request in closed])
    _close_inputs(components, [ref_of[id(doc.query)] for _p, _m, doc, _a, _w in operations if doc.query])
    paths: dict[str, dict[str, Any]] = {}
    for path, method, doc, params, is_ws in operations:
        op: dict[str, Any] = {
            "summary": doc.summary,
            "operationId": f"{method}_{path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
            "parameters": [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params],
            "responses": {},
        }
        if doc.tags:
            op["tags"] = list(doc.tags)
        if doc.description or is_ws:
            op["description"] = " ".join(filter(None, (doc.description, _WS_DESCRIPTION if is_ws else "")))
        if is_ws:
            op["x-websocket"] = True
        for header in doc.headers:
            op["parameters"].append({"name": header, "in": "header", "required": False, "schema": {"type": "string"}})
        if doc.query is not None:
            query_schema = components.get(doc.query.__name__, {})
            op["parameters"].extend(_query_parameters(query_schema))
        if doc.request is not None:
            op["requestBody"] = {"required": True, "content": _json(ref_of[id(doc.request)])}
        ok: dict[str, Any] = {"description": "success"}
        if doc.response is not None:
            response_model = doc.response
            if doc.wire is None:
                response_model = next(m for m in models if getattr(m, "__args__", None) == (doc.response,))
            ok["content"] = _json(ref_of[id(response_model)])
        if doc.streaming:
            ok.setdefault("content", {})["text/event-stream"] = {"schema": {"type": "string"}}
        if is_ws:
            op["responses"] = _ws_responses(path, api_prefix, error_ref)
        else:
            op["responses"][str(doc.success)] = ok
            failure = ("error envelope", error_ref) if doc.wire is None else ("error", ref_of[id(doc.wire.error)])
            for status in doc.errors:
                op["responses"][str(status)] = {"description": failure[0], "content": _json(failure[1])}
        if path.startswith(api_prefix):
            op["security"] = [{"bearerAuth": []}]
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
