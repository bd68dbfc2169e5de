"""Driven adapter: joserfc implementation of ``TokenMinter`` (HS* tokens from the shared secret)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from joserfc import jwt
from joserfc.jwk import OctKey

from domain.errors import ConfigurationError
from settings.secret import Secret

__all__ = ["JoseTokenMinter"]


class JoseTokenMinter:
    """Signs tokens with ``auth.jwt_secret``; raises ``ConfigurationError`` when no secret is configured."""

    def __init__(self, secret: Secret | None, algorithm: str = "HS256") -> None:
        self._key = OctKey.import_key(secret.reveal()) if secret else None
        self._algorithm = algorithm

    def mint(
        self,
        subject: str,
        *,
        email: str | None = None,
        scopes: Sequence[str] = (),
        ttl_s: float = 3600.0,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed token for ``subject`` valid for ``ttl_s`` seconds."""
        if self._key is None:
            raise ConfigurationError("SWITCHYARD_AUTH_JWT_SECRET", "set a shared secret to mint tokens with")
        now = int(time.time())
        claims: dict[str, Any] = {"sub": subject, "iat": now, "exp": now + int(ttl_s), **(extra or {})}
        if email:
            claims["email"] = email
        if scopes:
            claims["scope"] = " ".join(scopes)
        return jwt.encode({"alg": self._algorithm, "typ": "JWT"}, claims, self._key)
