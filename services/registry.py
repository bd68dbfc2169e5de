"""Use case: the provider registry, which answers "which model is this name, and who serves it?".

The container registers providers explicitly (a mapping of provider name to ``TextProvider``, built only for the
vendors that are configured); there are no import side effects. Only entries whose provider is registered are
listed or resolved; naming a catalogued model of a disabled vendor says so instead of "unknown model".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from domain.catalog import ModelSpec
from domain.errors import NotFoundError
from domain.registry import ModelIndex, require_capability
from ports.text import TextProvider

__all__ = ["ProviderRegistry"]


class ProviderRegistry:
    """The enabled part of the catalog and the text provider of each enabled vendor."""

    def __init__(self, catalog: Iterable[ModelSpec], text_providers: Mapping[str, TextProvider]) -> None:
        specs = tuple(catalog)
        self._providers: Mapping[str, TextProvider] = MappingProxyType(dict(text_providers))
        self._enabled = ModelIndex.of(s for s in specs if s.provider in self._providers)
        self._disabled = tuple(s for s in specs if s.provider not in self._providers)

    @property
    def provider_names(self) -> list[str]:
        """Enabled vendors, sorted."""
        return sorted(self._providers)

    def models(self, capability: str | None = None) -> list[ModelSpec]:
        """Enabled models in catalog order, optionally only those with ``capability``."""
        if capability is None:
            return list(self._enabled.specs)
        return self._enabled.with_capability(capability)

    def resolve(self, name: str, *, capabilities: Iterable[str] = ()) -> ModelSpec:
        """The enabled model ``name`` designates, checked for ``capabilities`` (404 / 422 otherwise)."""
        spec = self._enabled.resolve(name, disabled=self._disabled)
        for capability in capabilities:
            require_capability(spec, capability, alternatives=self._enabled.specs)
        return spec

    def text_provider(self, spec: ModelSpec) -> TextProvider:
        """The text provider serving ``spec``."""
        provider = self._providers.get(spec.provider)
        if provider is None:
            raise NotFoundError(f"provider {spec.provider!r} is not enabled", context={"provider": spec.provider})
        return provider
