"""The scripted test producer is test code: production apps never serve it, a test app adds it on demand."""

from __future__ import annotations

from pathlib import Path

from entrypoints.http.app import create_app
from tests.support.app import auth_headers, make_container, make_settings
from tests.support.streams import add_test_routes


async def test_the_production_app_has_no_test_producer_route(tmp_path: Path) -> None:
    """`create_app` alone has no POST route at the test producer's path (only the stream status GET matches it)."""
    container = make_container(make_settings(tmp_path))
    app = create_app(container)
    try:
        async with app.test_app():
            response = await app.test_client().post("/api/v1/streams/test", json={}, headers=auth_headers())
            assert response.status_code == 405
            assert "POST" not in response.headers["Allow"]
    finally:
        container.unwire()


async def test_added_test_routes_run_a_scripted_stream_to_its_end(tmp_path: Path) -> None:
    """With `add_test_routes` the scripted stream starts for its caller and ends `done` with its events."""
    container = make_container(make_settings(tmp_path))
    app = create_app(container)
    add_test_routes(app)
    try:
        async with app.test_app():
            client = app.test_client()
            started = await client.post("/api/v1/streams/test", json={"events": 3}, headers=auth_headers())
            assert started.status_code == 200, await started.get_data(as_text=True)
            stream_id = (await started.get_json())["data"]["stream_id"]
            assert started.headers["X-Stream-ID"] == stream_id
            events = await client.get(f"/api/v1/streams/{stream_id}/events", headers=auth_headers())
            body = await events.get_data(as_text=True)
            assert body.count("event: text") == 3
            assert "event: done" in body
            refused = await client.post("/api/v1/streams/test", json={"events": "many"}, headers=auth_headers())
            assert refused.status_code == 422
    finally:
        container.unwire()
