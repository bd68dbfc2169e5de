"""Use case: the provider registry, which answers "which model is this name, and who serves it through this port?".

The container registers each configured vendor's ``VendorProviders`` (every port it implements over one SDK client);
there are no import side effects. Only entries whose vendor is registered are listed or resolved; naming a catalogued
model of a disabled vendor says so instead of "unknown model". One lookup serves every port alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TypeVar

from domain.catalog import ModelSpec
from domain.errors import NotFoundError
from domain.model_index import ModelIndex, require_capability
from ports.providers import PortKey, VendorProviders

__all__ = ["ProviderRegistry"]

P = TypeVar("P")


class ProviderRegistry:
    """The enabled part of the catalog and the providers of each enabled vendor, by port."""

    def __init__(self, catalog: Iterable[ModelSpec], vendors: Mapping[str, VendorProviders]) -> None:
        specs = tuple(catalog)
        self._vendors: Mapping[str, VendorProviders] = MappingProxyType(dict(vendors))
        self._enabled = ModelIndex.of(s for s in specs if s.provider in self._vendors)
        self._disabled = tuple(s for s in specs if s.provider not in self._vendors)

    @property
    def provider_names(self) -> list[str]:
        """Enabled vendors, sorted."""
        return sorted(self._vendors)

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

    def provider(self, spec: ModelSpec, port: PortKey[P]) -> P | None:
        """The provider serving ``spec`` through ``port``; ``None`` when its vendor does not implement that port."""
        vendor = self._vendors.get(spec.provider)
        if vendor is None:
            raise NotFoundError(f"provider {spec.provider!r} is not enabled", context={"provider": spec.provider})
        return vendor.get(port)
