"""`switchyard serve` in local with no key: a random secret per start and a printed, working development token."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from tests.support.app import auth_headers
from tests.support.server import running_server


def test_serve_prints_a_working_development_token(tmp_path: Path) -> None:
    """The printed token opens /api/ (404 for an unknown route, not 401); a token from another secret does not."""
    env = {"SWITCHYARD_ENV": "local", "SWITCHYARD_AUTH_JWT_SECRET": "", "SWITCHYARD_APP_DATA_DIR": str(tmp_path)}
    with running_server(tmp_path, env) as server:
        deadline = time.monotonic() + 10  # the banner follows the server's first answer: it may trail /health a bit
        while (found := re.search(r"Development token \(valid 7 days\): (\S+)", server.log())) is None:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        dev = {"Authorization": f"Bearer {found.group(1)}"}
        assert httpx.get(f"{server.base_url}/api/v1/anything", headers=dev).status_code == 404
        assert httpx.get(f"{server.base_url}/api/v1/anything", headers=auth_headers()).status_code == 401
        assert httpx.get(f"{server.base_url}/api/v1/anything").status_code == 401
