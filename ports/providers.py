"""Driven ports, shared part: how the registry keys providers by port, and one vendor's bundle of providers.

Each port module declares its key (``TEXT_PORT``, ``IMAGE_PORT``, ``EMBEDDING_PORT`` ...). A vendor package has one
builder that returns a ``VendorProviders``: every port it implements, over one shared SDK client, and the one
``close`` that releases that client. The registry looks a provider up by (vendor, port) for any port alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar, cast

from attrs import field, frozen

__all__ = ["PortKey", "VendorProviders"]

P = TypeVar("P")


@frozen
class PortKey(Generic[P]):
    """Names a provider port; ``capability`` is the catalog capability a model needs to be served through it, and
    ``variant`` tells apart ports that serve the same capability (speech-to-text of files and of live audio)."""

    capability: str
    variant: str = ""


async def _nothing() -> None:
    return None


@frozen
class VendorProviders:
    """What one configured vendor serves, by port, and how to release its SDK client (once, at shutdown)."""

    name: str
    providers: Mapping[PortKey[Any], object] = field(factory=dict)
    close: Callable[[], Awaitable[None]] = _nothing

    def get(self, port: PortKey[P]) -> P | None:
        """The provider implementing ``port``, or ``None`` when this vendor does not serve it."""
        return cast("P | None", self.providers.get(port))
