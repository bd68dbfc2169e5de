"""Driven adapter: joserfc implementation of ``TokenMinter`` (HS* tokens from the shared secret)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from joserfc import jwt
from joserfc.jwk import OctKey

from domain.errors import ConfigurationError
from settings.secret import Secret

__all__ = ["MIN_SECRET_BYTES", "JoseTokenMinter", "secret_key"]

# RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output; shorter ones can be brute-forced
# offline from a single token.
MIN_SECRET_BYTES: Final = 32


def secret_key(secret: Secret | None) -> OctKey | None:
    """The HMAC key for ``auth.jwt_secret`` (None when unset); ``ConfigurationError`` when it is too short."""
    if not secret:
        return None
    if len(secret.reveal().encode()) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            "SWITCHYARD_AUTH_JWT_SECRET", f"must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
        )
    return OctKey.import_key(secret.reveal())


class JoseTokenMinter:
    """Signs tokens with ``auth.jwt_secret``; raises ``ConfigurationError`` when no secret is configured."""

    def __init__(self, secret: Secret | None, algorithm: str = "HS256") -> None:
        self._key = secret_key(secret)
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
            raise ConfigurationError(
                "SWITCHYARD_AUTH_JWT_SECRET",
                "set a shared secret to mint tokens with (or use the development token `switchyard serve` prints)",
            )
        now = int(time.time())
        claims: dict[str, Any] = {"sub": subject, "iat": now, "exp": now + int(ttl_s), **(extra or {})}
        if email:
            claims["email"] = email
        if scopes:
            claims["scope"] = " ".join(scopes)
        return jwt.encode({"alg": self._algorithm, "typ": "JWT"}, claims, self._key)
