"""Vendor health through the whole app and the real OpenAI SDK adapter at the vendor emulator: a model whose endpoint
fails repeatedly is skipped for its fallback until it recovers, a model with no fallback left fails fast with 503
and ``Retry-After``, and ``GET /api/v1/health/models`` (admin) shows the breakers while ``/ready`` ignores them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import pytest
from quart import Quart

from entrypoints.http.app import create_app
from settings import Secret
from tests.emulator import SCENARIOS, Fault, RunningEmulator, Scenario
from tests.support.app import auth_headers, make_container, make_settings

OPEN_S: Final = 0.5
CATALOG: Final = """
[[models]]
id = "emu-primary"
provider = "openai"
vendor_model = "breaker-primary"
capabilities = ["text"]
fallbacks = ["openai/emu-backup"]

[[models]]
id = "emu-backup"
provider = "openai"
vendor_model = "text"
capabilities = ["text"]

[[models]]
id = "emu-lonely"
provider = "openai"
vendor_model = "breaker-lonely"
capabilities = ["text"]
"""
FAILING: Final = Scenario(fault=Fault("server_error"))


@pytest.fixture
async def app(emulator: RunningEmulator, tmp_path: Path) -> AsyncIterator[Quart]:
    """The app with OpenAI at the emulator, one retry per model, and breakers that open after two failures."""
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG)
    providers = {
        "openai_api_key": Secret("sk-test"),
        "openai_base_url": emulator.openai_base_url,
        "catalog_path": catalog,
        "max_retries": 1,
        "retry_base_delay_s": 0.01,
        "retry_max_delay_s": 0.02,
    }
    breaker = {"failure_threshold": 2, "min_volume": 100, "open_s": OPEN_S}
    container = make_container(make_settings(tmp_path, providers=providers, breaker=breaker))
    application = create_app(container)
    async with application.test_app():
        yield application
    container.unwire()


def _calls(emulator: RunningEmulator, model: str) -> int:
    return sum(1 for r in emulator.state.requests if r.model == model)


async def _chat(app: Quart, model: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    response = await app.test_client().post("/api/v1/chat", json=body, headers=auth_headers())
    return response.status_code, await response.get_json(), {k.lower(): v for k, v in response.headers.items()}


async def _health(app: Quart) -> dict[str, dict[str, Any]]:
    response = await app.test_client().get("/api/v1/health/models", headers=auth_headers(scopes=("admin",)))
    assert response.status_code == 200
    data = (await response.get_json())["data"]
    assert data["breakers_enabled"] is True
    return {m["model"]: m for m in data["models"]}


async def test_a_failing_model_is_skipped_for_its_fallback_until_it_recovers(
    app: Quart, emulator: RunningEmulator
) -> None:
    """Two 500s open emu-primary; the next request goes straight to emu-backup without touching it; once the
    endpoint recovers and the cool-down is over, one probe closes the breaker and emu-primary serves again."""
    emulator.state.script("breaker-primary", FAILING)
    status, body, _ = await _chat(app, "openai/emu-primary")
    assert status == 200, body
    assert body["data"]["text"] == "Hello, world!"
    assert body["meta"]["extra"]["fallback_used"] == "openai/emu-backup"
    assert _calls(emulator, "breaker-primary") == 2

    status, body, _ = await _chat(app, "openai/emu-primary")
    assert status == 200, body
    assert body["meta"]["extra"]["fallback_used"] == "openai/emu-backup"
    assert _calls(emulator, "breaker-primary") == 2  # skipped: the failing endpoint was not called again

    health = await _health(app)
    primary, backup = health["openai/emu-primary"], health["openai/emu-backup"]
    assert (primary["state"], primary["window_failures"], primary["error_rate"]) == ("open", 2, 1.0)
    assert 0 < primary["retry_after_s"] <= OPEN_S
    assert (backup["state"], backup["window_calls"], backup["latency_samples"]) == ("closed", 2, 2)
    assert backup["latency_p50_ms"] > 0
    assert (await app.test_client().get("/ready")).status_code == 200  # vendors' health is not readiness

    page = await (await app.test_client().get("/metrics")).get_data(as_text=True)
    assert 'breaker_transitions_total{model="openai/emu-primary",provider="openai",to="open"} 1.0' in page
    assert 'breaker_skips_total{model="openai/emu-primary",provider="openai"} 1.0' in page

    emulator.state.script("breaker-primary", SCENARIOS["text"])
    await asyncio.sleep(OPEN_S + 0.05)
    status, body, _ = await _chat(app, "openai/emu-primary")
    assert status == 200, body
    assert body["meta"]["extra"]["fallback_used"] is None
    assert _calls(emulator, "breaker-primary") == 3
    assert (await _health(app))["openai/emu-primary"]["state"] == "closed"


async def test_with_no_fallback_left_the_request_fails_fast_with_retry_after(
    app: Quart, emulator: RunningEmulator
) -> None:
    """Once emu-lonely's breaker is open, a request for it is a 503 ``provider_unavailable`` with ``Retry-After``,
    answered without calling the vendor."""
    emulator.state.script("breaker-lonely", FAILING)
    status, body, _ = await _chat(app, "openai/emu-lonely")
    assert status == 502, body
    status, body, headers = await _chat(app, "openai/emu-lonely")
    assert status == 503, body
    assert body["data"]["error"] == "provider_unavailable"
    assert body["data"]["context"]["models"] == ["openai/emu-lonely"]
    assert headers["retry-after"] == "1"  # 0.5 s, rounded up
    assert _calls(emulator, "breaker-lonely") == 2


async def test_the_health_report_is_for_admins_only(app: Quart) -> None:
    """Without the admin scope: 403; without a token: 401."""
    client = app.test_client()
    assert (await client.get("/api/v1/health/models", headers=auth_headers())).status_code == 403
    assert (await client.get("/api/v1/health/models")).status_code == 401
