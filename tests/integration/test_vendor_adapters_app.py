"""The vendor adapters inside the whole app: ``POST /api/v1/chat`` served by the real OpenAI, Anthropic and Gemini
SDK adapters at the vendor emulator (answers, tool calls, fault statuses, server-side retry), and the emulator's
fidelity to each SDK's own non-streaming calls and stream accumulators."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from entrypoints.http.app import create_app
from settings import Secret
from tests.emulator import SCENARIOS, Fault, RunningEmulator, Scenario
from tests.emulator.wire import LEAKY_KEY
from tests.support.app import auth_headers, make_container, make_settings

# --- the whole app over the real adapters ----------------------------------------------------------------------

APP_CATALOG = """
[[models]]
id = "emu-text"
provider = "{provider}"
vendor_model = "{scenario}"
capabilities = ["text", "tools"]
"""


@pytest.fixture
async def vendor_app(emulator: RunningEmulator, tmp_path: Path) -> AsyncIterator[tuple[Quart, Path]]:
    """The real app and container with OpenAI, Anthropic and Gemini all pointed at the emulator; the catalog file is
    rewritten per test through the returned path before the first request (it is read at start)."""
    catalog = tmp_path / "catalog.toml"
    catalog.write_text("")
    providers = {
        "openai_api_key": Secret("sk-test"),
        "openai_base_url": emulator.openai_base_url,
        "anthropic_api_key": Secret("sk-ant-test"),
        "anthropic_base_url": emulator.anthropic_base_url,
        "gemini_api_key": Secret("g-test"),
        "gemini_base_url": emulator.gemini_base_url,
        "catalog_path": catalog,
        "retry_base_delay_s": 0.01,
        "retry_max_delay_s": 0.05,
    }
    container = make_container(make_settings(tmp_path, providers=providers))
    yield create_app(container), catalog
    container.unwire()


def _catalog(*entries: tuple[str, str, str]) -> str:
    """Catalog entries (id, provider, emulator scenario)."""
    return "".join(
        APP_CATALOG.replace("emu-text", model).format(provider=provider, scenario=scenario)
        for model, provider, scenario in entries
    )


async def _chat(app: Quart, model: str) -> tuple[int, dict[str, Any]]:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    response = await app.test_client().post("/api/v1/chat", json=body, headers=auth_headers())
    return response.status_code, await response.get_json()


async def test_chat_api_answers_through_each_vendor_sdk(vendor_app: tuple[Quart, Path]) -> None:
    """POST /api/v1/chat reaches each vendor through its SDK adapter and assembles the same answer and tool calls."""
    app, catalog = vendor_app
    vendors = ("openai", "anthropic", "gemini")
    catalog.write_text(
        _catalog(
            *((f"emu-{v}", v, "text") for v in vendors), *((f"emu-tools-{v}", v, "tools-parallel") for v in vendors)
        )
    )
    async with app.test_app():
        for vendor in vendors:
            status, body = await _chat(app, f"{vendor}/emu-{vendor}")
            assert status == 200, body
            assert (body["data"]["text"], body["data"]["provider"]) == ("Hello, world!", vendor)
            assert body["data"]["usage"]["input_tokens"] == 12
            status, body = await _chat(app, f"{vendor}/emu-tools-{vendor}")
            assert status == 200, body
            calls = body["data"]["tool_calls"]
            assert [(c["id"], c["name"]) for c in calls] == [
                ("call_weather_1", "get_weather"),
                ("call_time_2", "get_time"),
            ]
            assert json.loads(calls[1]["arguments"]) == {"tz": "Europe/Paris"}
            assert body["data"]["finish_reason"] == "tool_calls"


async def test_chat_api_maps_vendor_faults_to_statuses(
    vendor_app: tuple[Quart, Path], emulator: RunningEmulator
) -> None:
    """Through the app: vendor 401 -> 502 without the key, context too long -> 422 with the reason, and a vendor
    429 followed by success is retried server-side so the client sees the text once."""
    app, catalog = vendor_app
    flaky = emulator.state.script("app-flaky", Scenario(fault=Fault("rate_limited")), SCENARIOS["text"])
    catalog.write_text(
        _catalog(
            ("emu-401", "anthropic", "fault-401"),
            ("emu-long", "gemini", "fault-context-too-long"),
            ("emu-flaky", "openai", flaky),
        )
    )
    async with app.test_app():
        status, body = await _chat(app, "anthropic/emu-401")
        assert status == 502, body
        assert LEAKY_KEY not in json.dumps(body)
        status, body = await _chat(app, "gemini/emu-long")
        assert status == 422, body
        assert "prompt is too long" in body["message"]
        before = len(emulator.state.requests)
        status, body = await _chat(app, "openai/emu-flaky")
        assert status == 200, body
        assert body["data"]["text"] == "Hello, world!"
        assert len(emulator.state.requests) == before + 2


async def test_emulator_answers_parse_in_each_sdks_own_helpers(emulator: RunningEmulator) -> None:
    """The emulator is faithful enough for the SDKs' non-streaming calls and stream accumulators (Responses
    ``stream()``, Anthropic ``messages.stream()``), not only for the raw streams the adapters read."""
    from anthropic import AsyncAnthropic
    from google import genai
    from google.genai import types
    from openai import AsyncOpenAI

    user: Any = [{"role": "user", "content": "hi"}]
    openai_client = AsyncOpenAI(api_key="x", base_url=emulator.openai_base_url, max_retries=0)
    chat = await openai_client.chat.completions.create(model="tools-parallel", messages=user)
    assert [c.id for c in chat.choices[0].message.tool_calls or []] == ["call_weather_1", "call_time_2"]
    response = await openai_client.responses.create(model="reasoning", input="hi")
    assert response.output_text == "The answer is 42."
    async with openai_client.responses.stream(model="tools-parallel", input="hi") as stream:
        final = await stream.get_final_response()
    assert [getattr(item, "arguments", None) for item in final.output][1] == '{"tz": "Europe/Paris"}'
    await openai_client.close()

    anthropic_client = AsyncAnthropic(api_key="x", base_url=emulator.anthropic_base_url, max_retries=0)
    message = await anthropic_client.messages.create(model="reasoning", max_tokens=10, messages=user)
    assert [block.type for block in message.content] == ["thinking", "text"]
    async with anthropic_client.messages.stream(model="tools-parallel", max_tokens=10, messages=user) as streamed:
        assembled = await streamed.get_final_message()
    assert [getattr(block, "input", None) for block in assembled.content] == [{"city": "Paris"}, {"tz": "Europe/Paris"}]
    await anthropic_client.close()

    options = types.HttpOptions(base_url=emulator.gemini_base_url, api_version="v1beta")  # the emulator's only one
    gemini_client = genai.Client(api_key="x", http_options=options)
    generated = await gemini_client.aio.models.generate_content(model="tools-parallel", contents="hi")
    assert [call.args for call in generated.function_calls or []] == [{"city": "Paris"}, {"tz": "Europe/Paris"}]
    await gemini_client.aio.aclose()
