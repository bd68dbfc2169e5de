"""Driven port: verify a bearer token and say who is calling; where the issuer's public keys come from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from domain.auth import AuthContext

__all__ = ["KeySource", "TokenMinter", "TokenVerifier"]


class TokenVerifier(Protocol):
    """Turns a raw bearer token into an ``AuthContext`` or raises ``AuthenticationError``."""

    async def verify(self, token: str) -> AuthContext:
        """Verify signature and claims; never returns for a bad token.

        Raises ``AuthenticationError`` for any bad token and ``ServiceUnavailableError`` when the keys needed to judge
        it cannot be had (the issuer's key set is unreachable and nothing usable is cached).
        """
        ...


class TokenMinter(Protocol):
    """Issues signed tokens from the configured shared secret (development tokens, ``switchyard token``, tests)."""

    def mint(self, subject: str, *, email: str | None = None, scopes: Sequence[str] = (), ttl_s: float = 3600.0) -> str:
        """A signed token for ``subject``."""
        ...


class KeySource(Protocol):
    """The issuer's public signing keys (a JSON Web Key Set), as plain JWK mappings.

    Implementations cache the set, refresh it when an unknown key id arrives (rate-limited) and when it ages out,
    and keep serving cached keys until they expire if the issuer goes down.
    """

    async def keys_for(self, kid: str | None) -> Sequence[Mapping[str, Any]]:
        """The public JWKs that may have signed a token carrying ``kid`` (every key when ``kid`` is None).

        An empty sequence means the key id is unknown. Raises ``ServiceUnavailableError`` when the issuer cannot be
        reached and no unexpired cached set remains.
        """
        ...
