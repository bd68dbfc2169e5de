"""The Gemini adapter calls ``/v1beta`` by default (the version Gemini-compatible servers and the API's newer features
live under), ``providers.gemini_api_version`` changes it, and the emulator refuses any other version, as a server that
does not serve it would, so a client left on google-genai's own default (``/v1``) fails here instead of in production.
"""

from __future__ import annotations

import pytest

from adapters.gemini.vendor import DEFAULT_API_VERSION, build_gemini_providers
from container import _vendor_table
from domain.catalog import ModelSpec
from domain.chat import ChatRequest, Message
from domain.errors import ConfigurationError, ProviderError
from ports.providers import VendorProviders
from ports.text import TEXT_PORT
from settings import Secret, load_settings
from tests.emulator import RunningEmulator

MODEL = ModelSpec(id="text", provider="gemini", capabilities=frozenset({"text"}))
REQUEST = ChatRequest(model="gemini/text", messages=[Message("user", "hi")])


def _gemini(emulator: RunningEmulator, **changes: str) -> VendorProviders:
    """The Gemini vendor exactly as the container builds it from settings (plus ``providers.<changes>``)."""
    environ = {"GEMINI_API_KEY": "test-key", "GOOGLE_GEMINI_BASE_URL": emulator.gemini_base_url}
    environ |= {f"SWITCHYARD_PROVIDERS_{key.upper()}": value for key, value in changes.items()}
    table = _vendor_table(load_settings(environ).providers)
    [(name, build, key, base_url)] = [row for row in table if row[0] == "gemini"]
    assert isinstance(key, Secret)
    built: VendorProviders = build(
        name=name, api_key=key.reveal(), base_url=base_url, timeout_s=10.0, connect_timeout_s=2.0
    )
    return built


async def _text(vendor: VendorProviders) -> str:
    provider = vendor.get(TEXT_PORT)
    assert provider is not None
    try:
        return "".join([getattr(event, "text", "") async for event in provider.stream(REQUEST, MODEL)])
    finally:
        await vendor.close()


async def test_the_default_version_is_v1beta_and_the_emulator_serves_it(emulator: RunningEmulator) -> None:
    """With no setting, the container's Gemini vendor streams an answer from /v1beta."""
    assert load_settings({}).providers.gemini_api_version == DEFAULT_API_VERSION == "v1beta"
    assert await _text(_gemini(emulator))


async def test_the_emulator_refuses_the_sdk_default_v1(emulator: RunningEmulator) -> None:
    """`providers.gemini_api_version = v1` (google-genai's own default) is a 404 from the emulator: a provider error."""
    with pytest.raises(ProviderError) as caught:
        await _text(_gemini(emulator, gemini_api_version="v1"))
    assert (caught.value.context["status"], caught.value.context["vendor_code"]) == (404, "NOT_FOUND")


def test_a_malformed_version_fails_at_start_naming_the_setting() -> None:
    """`gemini_api_version = "beta/"` stops the build with the variable named, before any request."""
    with pytest.raises(ConfigurationError, match="SWITCHYARD_PROVIDERS_GEMINI_API_VERSION"):
        build_gemini_providers(
            name="gemini", api_key="k", base_url=None, timeout_s=1, connect_timeout_s=1, api_version="beta/"
        )
