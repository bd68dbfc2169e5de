"""Driven port: verify a bearer token and say who is calling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from domain.auth import AuthContext

__all__ = ["TokenMinter", "TokenVerifier"]


class TokenVerifier(Protocol):
    """Turns a raw bearer token into an ``AuthContext`` or raises ``AuthenticationError``."""

    async def verify(self, token: str) -> AuthContext:
        """Verify signature and claims; never returns for a bad token."""
        ...


class TokenMinter(Protocol):
    """Issues signed tokens from the configured shared secret (development tokens, ``switchyard token``, tests)."""

    def mint(self, subject: str, *, email: str | None = None, scopes: Sequence[str] = (), ttl_s: float = 3600.0) -> str:
        """A signed token for ``subject``."""
        ...
