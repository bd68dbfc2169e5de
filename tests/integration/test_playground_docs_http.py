"""The playground and the API docs are served from the package: the page and its files, Swagger UI's assets (no CDN
anywhere in the page), and a development token only in `local`, to loopback clients."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from entrypoints.http.app import create_app
from entrypoints.http.routes.docs import SWAGGER_ASSETS
from entrypoints.http.routes.playground import PLAYGROUND_FILES
from tests.support.app import make_container, make_settings


async def _app(tmp_path: Path, **sections: dict[str, Any]) -> AsyncIterator[Quart]:
    container = make_container(make_settings(tmp_path, **sections))
    app = create_app(container)
    async with app.test_app():
        yield app
    container.unwire()


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Quart]:
    async for running in _app(tmp_path):
        yield running


async def test_docs_load_nothing_from_another_host(app: Quart) -> None:
    """/docs references only its own assets, and each one is served (Swagger UI 5, its licence beside it)."""
    client = app.test_client()
    page = await (await client.get("/docs")).get_data(as_text=True)
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    for name in (*SWAGGER_ASSETS, "init.js"):
        response = await client.get(f"/docs/assets/{name}")
        assert response.status_code == 200, name
        assert len(await response.get_data()) > 100, name
    bundle = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.headers["Content-Type"].startswith("text/javascript")
    assert "Apache License" in await (await client.get("/docs/assets/LICENSE")).get_data(as_text=True)


@pytest.mark.parametrize("name", ["swagger-editor-bundle.js", "..%2F..%2Fsettings%2Fmodel.py", "index.html"])
async def test_only_listed_asset_files_are_served(app: Quart, name: str) -> None:
    """A name not on the list (another package file, a path) is the envelope's 404."""
    response = await app.test_client().get(f"/docs/assets/{name}")
    assert response.status_code == 404
    assert (await response.get_json())["data"]["error"] == "not_found"


async def test_the_playground_page_and_its_files_are_served(app: Quart) -> None:
    """/playground is the page; its script and style are served by name, without a CDN or a build step."""
    client = app.test_client()
    page = await client.get("/playground")
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    html = await page.get_data(as_text=True)
    assert '<script src="/playground/playground.js">' in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    for name in PLAYGROUND_FILES:
        assert (await client.get(f"/playground/{name}")).status_code == 200, name
    assert (await client.get("/playground/missing.js")).status_code == 404


async def test_the_development_token_is_offered_in_local_to_loopback_clients(tmp_path: Path) -> None:
    """local + auth.dev_token + a secret: a working token for a loopback client; another address gets a 404."""
    async for app in _app(tmp_path, app={"env": "local"}, auth={"dev_token": True}):
        client = app.test_client()
        response = await client.get("/playground/dev-token", scope_base={"client": ("127.0.0.1", 50000)})
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        token = (await response.get_json())["data"]["token"]
        models = await client.get("/api/v1/models", headers={"Authorization": f"Bearer {token}"})
        assert models.status_code == 200
        remote = await client.get("/playground/dev-token", scope_base={"client": ("192.0.2.7", 50000)})
        assert remote.status_code == 404


@pytest.mark.parametrize(
    "sections",
    [{"app": {"env": "test"}, "auth": {"dev_token": True}}, {"app": {"env": "local"}, "auth": {"dev_token": False}}],
)
async def test_no_development_token_elsewhere(tmp_path: Path, sections: dict[str, dict[str, Any]]) -> None:
    """Outside local, or with auth.dev_token off, the route is a 404 even for a loopback client."""
    async for app in _app(tmp_path, **sections):
        response = await app.test_client().get("/playground/dev-token", scope_base={"client": ("127.0.0.1", 1)})
        assert response.status_code == 404
