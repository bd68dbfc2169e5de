"""A real Hypercorn server on a free port: the embedded default answers and requires auth."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.app import auth_headers
from tests.support.server import running_server


def test_server_answers_health_ready_and_guards_the_api(tmp_path: Path) -> None:
    """`switchyard serve` on the embedded default: /health 200, /ready 200, /api without a token 401."""
    with running_server(tmp_path) as server:
        assert httpx.get(f"{server.base_url}/health").json()["data"]["status"] == "ok"
        assert httpx.get(f"{server.base_url}/ready").status_code == 200
        assert httpx.get(f"{server.base_url}/api/v1/anything").status_code == 401
        assert httpx.get(f"{server.base_url}/api/v1/anything", headers=auth_headers()).status_code == 404
    assert "http_request" in server.log()
