"""Container wiring: a text provider per enabled vendor (fake always), the registry over them, closed at shutdown."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import attrs
import pytest

from container import Container
from domain.errors import ConfigurationError
from ports.live_transcription import LIVE_STT_PORT
from ports.text import TEXT_PORT
from settings import load_settings
from settings.catalog import resolve_compatible
from tests.support.app import make_container, make_settings


async def resolved(container: Container, name: str) -> Any:
    """The provider ``name`` of ``container`` (async resources make it awaitable)."""
    value = getattr(container, name)()
    return await value if inspect.isawaitable(value) else value


async def shutdown(container: Container) -> None:
    result = container.shutdown_resources()
    if result is not None:
        await result


async def test_only_configured_vendors_get_a_provider(tmp_path: Path) -> None:
    """With no keys only ``fake`` is registered; keys for OpenAI and Groq and an Ollama URL add exactly those."""
    bare = make_container(make_settings(tmp_path))
    assert set(await resolved(bare, "vendors")) == {"fake"}
    await shutdown(bare)

    environ = {"OPENAI_API_KEY": "sk-test", "GROQ_API_KEY": "gsk-test", "OLLAMA_BASE_URL": "http://127.0.0.1:9/v1"}
    loaded = resolve_compatible(load_settings(environ), environ)
    container = make_container(attrs.evolve(make_settings(tmp_path), providers=loaded.providers))
    vendors = await resolved(container, "vendors")
    assert set(vendors) == {"fake", "openai", "groq", "ollama"}
    assert {name: v.get(TEXT_PORT).name for name, v in vendors.items()} == {n: n for n in vendors}
    # Live transcription rides OpenAI's Realtime API, which the compatible family does not have.
    assert vendors["openai"].get(LIVE_STT_PORT) is not None
    assert vendors["groq"].get(LIVE_STT_PORT) is None
    registry = await resolved(container, "provider_registry")
    assert registry.resolve("gpt-4o").provider == "openai"
    assert registry.resolve("groq/llama-3.3-70b-versatile").provider == "groq"
    assert "anthropic" not in registry.provider_names
    await shutdown(container)


async def test_retry_policy_comes_from_provider_settings(tmp_path: Path) -> None:
    """providers.max_retries and the delays reach the attempt runner's retry policy (the chat service's)."""
    settings = make_settings(tmp_path, providers={"max_retries": 5, "retry_deadline_s": 3.0, "retry_base_delay_s": 0.1})
    container = make_container(settings)
    policy = (await resolved(container, "chat_service")).runner.policy
    assert (policy.max_retries, policy.deadline_s, policy.base_delay_s) == (5, 3.0, 0.1)
    await shutdown(container)


async def test_a_broken_catalog_file_stops_the_start(tmp_path: Path) -> None:
    """A bad providers.catalog_path fails when resources start, naming the file, not at the first chat."""
    bad = tmp_path / "catalog.toml"
    bad.write_text('[[models]]\nid = "x"\nprovider = "fake"\ncapabilities = ["telepathy"]\n')
    container = make_container(make_settings(tmp_path, providers={"catalog_path": bad}))
    with pytest.raises(ConfigurationError) as caught:
        await resolved(container, "init_resources")
    assert str(bad) in caught.value.key
    await shutdown(container)
