"""Use case: one ``TokenVerifier`` for every bearer credential: Switchyard API keys and JWTs.

A token starting ``sy-`` is an API key (a JWT's first segment is base64 JSON, ``eyJ...``, so the two never meet) and
goes to the key service; anything else to the JWT verifier. Both give the same ``AuthContext``, so HTTP routes,
WebSockets and the vendor-shaped front doors accept either without knowing which it was.
"""

from __future__ import annotations

from domain.api_keys import KEY_PREFIX
from domain.auth import AuthContext
from ports.auth import TokenVerifier

__all__ = ["CredentialVerifier"]


class CredentialVerifier:
    """Routes ``sy-`` tokens to ``keys`` and the rest to ``jwt``."""

    def __init__(self, jwt: TokenVerifier, keys: TokenVerifier) -> None:
        self._jwt = jwt
        self._keys = keys

    async def verify(self, token: str) -> AuthContext:
        """The caller ``token`` stands for, whichever kind of credential it is."""
        verifier = self._keys if token.startswith(KEY_PREFIX) else self._jwt
        return await verifier.verify(token)
