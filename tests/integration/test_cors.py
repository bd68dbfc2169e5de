"""CORS for browser pages on other origins: preflights answered before authentication, API responses (errors too)
readable by allowed origins with the stream and request headers exposed, nothing for other origins or outside the API,
off unless configured (and off by default outside ``local``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from domain.errors import ConfigurationError
from entrypoints.http.app import create_app
from entrypoints.http.cors import CorsPolicy
from settings import load_settings
from settings.model import HttpSettings
from tests.support.app import auth_headers, make_container, make_settings

PAGE = "http://localhost:5173"
PREFLIGHT = {
    "Origin": PAGE,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


async def _app(tmp_path: Path, **http: Any) -> AsyncIterator[Quart]:
    container = make_container(make_settings(tmp_path, http=http))
    app = create_app(container)
    async with app.test_app():
        yield app
    container.unwire()


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Quart]:
    async for running in _app(tmp_path, cors_origins=("http://localhost:*", "https://app.example.com")):
        yield running


async def test_a_preflight_is_answered_before_authentication(app: Quart) -> None:
    """OPTIONS /api/v1/chat from an allowed page, no token: 204 with the origin, methods, headers and max age."""
    response = await app.test_client().options("/api/v1/chat", headers=PREFLIGHT)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    assert "POST" in response.headers["Access-Control-Allow-Methods"].split(", ")
    assert response.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Origin" in response.headers["Vary"]


async def test_api_responses_name_the_origin_and_expose_the_stream_headers(app: Quart) -> None:
    """A GET from an allowed page: Allow-Origin is that page, X-Stream-ID & co. are exposed, caches vary by Origin."""
    response = await app.test_client().get("/api/v1/models", headers={"Origin": PAGE, **auth_headers()})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    exposed = response.headers["Access-Control-Expose-Headers"].split(", ")
    assert exposed == ["X-Stream-ID", "X-Request-ID", "Retry-After", "Server-Timing"]
    assert "Origin" in response.headers["Vary"]


async def test_errors_are_readable_by_the_page_too(app: Quart) -> None:
    """A 401 (no token) still carries Allow-Origin, so the page can read the envelope instead of a network error."""
    response = await app.test_client().get("/api/v1/models", headers={"Origin": "https://app.example.com"})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"


@pytest.mark.parametrize("origin", ["http://evil.example", "https://localhost:5173", "http://localhost.evil.com:80"])
async def test_other_origins_get_no_permission(app: Quart, origin: str) -> None:
    """An origin not listed (another host, scheme or a look-alike) gets no preflight permission, no Allow-Origin."""
    client = app.test_client()
    preflight = await client.options("/api/v1/chat", headers={**PREFLIGHT, "Origin": origin})
    assert preflight.status_code == 204
    assert "Access-Control-Allow-Origin" not in preflight.headers
    response = await client.get("/api/v1/models", headers={"Origin": origin, **auth_headers()})
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_pages_outside_the_api_get_no_cors_headers(app: Quart) -> None:
    """/playground and /docs are for their own origin: an allowed page on another origin gets no Allow-Origin."""
    for path in ("/playground", "/docs"):
        response = await app.test_client().get(path, headers={"Origin": PAGE})
        assert "Access-Control-Allow-Origin" not in response.headers, path


async def test_without_origins_there_is_no_cors(tmp_path: Path) -> None:
    """The test environment (like production) lists no origin: a preflight meets authentication, nothing is allowed."""
    async for app in _app(tmp_path):
        client = app.test_client()
        assert (await client.options("/api/v1/chat", headers=PREFLIGHT)).status_code == 401
        response = await client.get("/api/v1/models", headers={"Origin": PAGE, **auth_headers()})
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_a_star_allows_any_origin_without_credentials(tmp_path: Path) -> None:
    """`*`: Allow-Origin is `*` for any page, and no Vary on Origin is needed."""
    async for app in _app(tmp_path, cors_origins=("*",)):
        response = await app.test_client().get("/api/v1/models", headers={"Origin": "https://x.test", **auth_headers()})
        assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_credentials_are_allowed_for_listed_origins(tmp_path: Path) -> None:
    """`http.cors_allow_credentials`: the header is sent, with the exact origin (never `*`)."""
    async for app in _app(tmp_path, cors_origins=("https://app.example.com",), cors_allow_credentials=True):
        headers = {**PREFLIGHT, "Origin": "https://app.example.com"}
        response = await app.test_client().options("/api/v1/chat", headers=headers)
        assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        assert response.headers["Access-Control-Allow-Credentials"] == "true"


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://localhost:5173", True),
        ("http://localhost", True),
        ("http://LOCALHOST:3000", True),
        ("http://127.0.0.1:8000", False),
        ("http://localhost:5173.evil.com", False),
        ("http://sub.localhost:5173", False),
    ],
)
def test_a_port_wildcard_matches_any_port_of_that_host_only(origin: str, allowed: bool) -> None:
    """`http://localhost:*` is that scheme and host with any port (or none), nothing else."""
    policy = CorsPolicy.from_settings(HttpSettings(cors_origins=("http://localhost:*",)))
    assert policy is not None
    assert (policy.allowed(origin) is not None) is allowed


@pytest.mark.parametrize(
    ("http", "message"),
    [
        ({"cors_origins": ("*",), "cors_allow_credentials": True}, "`*` cannot be combined"),
        ({"cors_origins": ("localhost:5173",)}, "'localhost:5173' is not an origin"),
        ({"cors_origins": ("https://app.example.com/",)}, "is not an origin"),
        ({"cors_origins": ("https://*.example.com",)}, "is not an origin"),
        ({"cors_origins": ("http://localhost:*",), "cors_max_age_s": -1}, "must be >= 0"),
    ],
)
def test_bad_cors_settings_fail_at_start_naming_the_variable(http: dict[str, Any], message: str) -> None:
    """A misconfigured policy stops the start with the variable named, not at the first browser request."""
    with pytest.raises(ConfigurationError, match=message) as caught:
        CorsPolicy.from_settings(HttpSettings(**http))
    assert caught.value.key.startswith("SWITCHYARD_HTTP_CORS_")


def test_cors_is_on_for_localhost_pages_in_local_and_off_elsewhere() -> None:
    """`local` allows http://localhost:* (a dev server's page); test, staging and production list nothing."""
    base = {"SWITCHYARD_DATABASE_URL": "sqlite://", "SWITCHYARD_AUTH_JWT_SECRET": "x" * 40}
    assert "http://localhost:*" in load_settings({"SWITCHYARD_ENV": "local", **base}).http.cors_origins
    for env in ("test", "staging", "production"):
        assert load_settings({"SWITCHYARD_ENV": env, **base}).http.cors_origins == (), env
