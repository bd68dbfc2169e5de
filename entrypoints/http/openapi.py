"""HTTP boundary: OpenAPI 3.1 generated from the routes and the same attrs models the handlers use.

Routes describe themselves with ``@documented(...)``; ``build_spec`` walks the app's URL map, so a route that forgets
the decorator still appears (with a generic envelope), and schemas come from ``msgspec.json.schema_components``
over the attrs classes: never a hand-kept copy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import msgspec
from attrs import field, frozen
from quart import Quart

from entrypoints.http.envelope import ApiResponse, ErrorBody

__all__ = ["OperationDoc", "build_spec", "documented"]

F = TypeVar("F", bound=Callable[..., Any])
_ATTR: Final = "__switchyard_openapi__"
_PARAM: Final = re.compile(r"<(?:[a-z_]+:)?([A-Za-z_][A-Za-z0-9_]*)>")
_DEFAULT_ERRORS: Final = (400, 401, 404, 422, 500)


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
) -> Callable[[F], F]:
    """Attach an ``OperationDoc`` to a view function (place it under ``@inject``)."""
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


def _query_parameters(cls: type[Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def build_spec(app: Quart, *, title: str, version: str, api_prefix: str = "/api/") -> dict[str, Any]:
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
            models.append(ApiResponse[doc.response])  # type: ignore[name-defined]

    refs, components = msgspec.json.schema_components(models, ref_template="#/components/schemas/{name}")
    ref_of = dict(zip(map(id, models), refs, strict=True))
    error_ref = refs[0]
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
            op["description"] = doc.description or "WebSocket endpoint (upgrade with GET)."
        if is_ws:
            op["x-websocket"] = True
        for header in doc.headers:
            op["parameters"].append({"name": header, "in": "header", "required": False, "schema": {"type": "string"}})
        if doc.query is not None:
            query_schema = components.get(doc.query.__name__, {})
            op["parameters"].extend(_query_parameters(doc.query, query_schema))
        if doc.request is not None:
            op["requestBody"] = {"required": True, "content": _json(ref_of[id(doc.request)])}
        ok: dict[str, Any] = {"description": "success"}
        if doc.response is not None:
            response_model = next(m for m in models if getattr(m, "__args__", None) == (doc.response,))
            ok["content"] = _json(ref_of[id(response_model)])
        if doc.streaming:
            ok.setdefault("content", {})["text/event-stream"] = {"schema": {"type": "string"}}
        op["responses"]["101" if is_ws else "200"] = ok
        for status in doc.errors:
            op["responses"][str(status)] = {"description": "error envelope", "content": _json(error_ref)}
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
