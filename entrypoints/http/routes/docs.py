"""Blueprint: the generated OpenAPI document and a page that renders it."""

from __future__ import annotations

from typing import Any, Final

from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response, current_app

from entrypoints.http.openapi import build_spec, documented

__all__ = ["blueprint"]

blueprint = Blueprint("docs", __name__)

_DOCS_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchyard API</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
<noscript>The API description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
</body></html>"""


@blueprint.get("/openapi.json")
@inject
@documented("This OpenAPI 3.1 document", tags=["ops"], errors=())
async def openapi(version: str = Provide["version"]) -> dict[str, Any]:
    spec = current_app.extensions.get("switchyard_openapi")
    if spec is None:
        spec = build_spec(current_app, title="Switchyard", version=version)
        current_app.extensions["switchyard_openapi"] = spec
    return spec


@blueprint.get("/docs")
@documented("Interactive API documentation (renders /openapi.json)", tags=["ops"], errors=())
async def docs() -> Response:
    return Response(_DOCS_PAGE, content_type="text/html; charset=utf-8")
