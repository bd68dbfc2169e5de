"""Blueprint: the generated OpenAPI document and a page that renders it, with no network.

Swagger UI's assets come from the ``swagger-ui-py`` package (Swagger UI 5, which reads OpenAPI 3.1; Apache-2.0, its
licence served beside them at ``/docs/assets/LICENSE``) and are served from here, so ``/docs`` works offline and
behind a firewall. The package is located without being imported: only its static folder is used.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Final

from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response, current_app

from domain.errors import ConfigurationError
from entrypoints.http.openapi import build_spec, documented
from entrypoints.http.static_files import FileShelf

__all__ = ["SWAGGER_ASSETS", "blueprint"]

blueprint = Blueprint("docs", __name__)

SWAGGER_ASSETS: Final = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "LICENSE")

_DOCS_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchyard API</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script>
<noscript>The API description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
<footer style="font:12px sans-serif;margin:1em"><a href="/playground">Playground</a> ·
Swagger UI is Apache-2.0 licensed (<a href="/docs/assets/LICENSE">licence</a>).</footer>
</body></html>"""

# A file of its own, not an inline script: a Content-Security-Policy without 'unsafe-inline' still renders the page.
_INIT_SCRIPT: Final = b"""window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui", deepLinking: true,
  persistAuthorization: true, validatorUrl: null});
"""


def _swagger_folder() -> Path:
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError("swagger-ui-py", "the package is not installed: /docs needs its assets")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


_SHELF: Final = FileShelf(_swagger_folder(), SWAGGER_ASSETS)


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
@documented("Interactive API documentation (renders /openapi.json, works offline)", tags=["ops"], errors=())
async def docs() -> Response:
    return Response(_DOCS_PAGE, content_type="text/html; charset=utf-8")


@blueprint.get("/docs/assets/<name>")
@documented("Swagger UI's files, served from the package (no CDN)", tags=["ops"], errors=(404,))
async def docs_asset(name: str) -> Response:
    if name == "init.js":
        response = Response(_INIT_SCRIPT, content_type="text/javascript; charset=utf-8")
        response.headers["Cache-Control"] = "no-cache"
        return response
    return _SHELF.response(name)
