"""Fakes of the auth ports: a key source whose key set and availability a test controls, and a token table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from domain.auth import AuthContext
from domain.errors import AuthenticationError, ServiceUnavailableError

__all__ = ["FakeKeySource", "FakeTokenVerifier"]


class FakeKeySource:
    """A ``KeySource`` over an in-memory key set; ``down`` makes every lookup a ``ServiceUnavailableError``."""

    def __init__(self, keys: Sequence[Mapping[str, Any]] = ()) -> None:
        self.keys: list[Mapping[str, Any]] = list(keys)
        self.down = False
        self.lookups: list[str | None] = []

    async def keys_for(self, kid: str | None) -> Sequence[Mapping[str, Any]]:
        self.lookups.append(kid)
        if self.down:
            raise ServiceUnavailableError("fake issuer is down", context={"service": "jwks"})
        if kid is None:
            return list(self.keys)
        return [key for key in self.keys if key.get("kid") == kid]


class FakeTokenVerifier:
    """A ``TokenVerifier`` that knows a fixed table of tokens; anything else is an ``AuthenticationError``."""

    def __init__(self, tokens: Mapping[str, AuthContext] | None = None) -> None:
        self.tokens: dict[str, AuthContext] = dict(tokens or {})

    async def verify(self, token: str) -> AuthContext:
        found = self.tokens.get(token)
        if found is None:
            raise AuthenticationError("unknown token")
        return found
