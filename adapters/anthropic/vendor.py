"""Driven adapter (Anthropic): the vendor's builder, every port it serves over one ``AsyncAnthropic`` client."""

from __future__ import annotations

from adapters.anthropic.client import anthropic_client
from adapters.anthropic.text import AnthropicTextProvider
from ports.providers import VendorProviders
from ports.text import TEXT_PORT

__all__ = ["build_anthropic_providers"]


def build_anthropic_providers(
    *, name: str, api_key: str, base_url: str | None, timeout_s: float, connect_timeout_s: float
) -> VendorProviders:
    """One client for ``name`` at ``base_url`` (Anthropic's own when ``None``), SDK retries off (the runner's);
    pooled, on aiohttp (``client.py``)."""
    client = anthropic_client(
        api_key=api_key, base_url=base_url, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s
    )
    return VendorProviders(name, {TEXT_PORT: AnthropicTextProvider(client, name=name)}, client.close)
