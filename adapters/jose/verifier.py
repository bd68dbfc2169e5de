"""Driven adapter: joserfc implementation of ``TokenVerifier`` (shared secret and static public keys).

The accepted algorithms come from settings, never from the token header; ``exp`` is required; ``nbf``/``iat`` are
checked with a leeway; ``iss``/``aud`` when configured. Every failure becomes ``AuthenticationError`` with a short,
token-free reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey, import_key

from domain.auth import AuthContext
from domain.errors import AuthenticationError, ConfigurationError
from domain.types import CustomerId
from settings.model import AuthSettings
from settings.secret import Secret

__all__ = ["JoseTokenVerifier", "load_static_keys"]

_HMAC: Final = frozenset({"HS256", "HS384", "HS512"})


def load_static_keys(settings: AuthSettings) -> KeySet:
    """Public keys named in ``auth.public_keys`` (PEM or JWK JSON files)."""
    keys: list[Any] = []
    for path in settings.public_keys:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError("SWITCHYARD_AUTH_PUBLIC_KEYS", f"cannot read {path}: {exc}") from None
        for kind in ("RSA", "EC", "OKP"):
            try:
                keys.append(import_key(data, kind))
                break
            except Exception:  # noqa: BLE001, S112 - try the next key type
                continue
        else:
            raise ConfigurationError("SWITCHYARD_AUTH_PUBLIC_KEYS", f"{path} is not an RSA, EC or OKP public key")
    return KeySet(keys)


def _scopes(payload: Mapping[str, Any], claim: str) -> frozenset[str]:
    raw = payload.get(claim, payload.get("scp", ()))
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list | tuple):
        return frozenset(str(s) for s in raw)
    return frozenset()


class JoseTokenVerifier:
    """Verifies HS* tokens with the shared secret and RS/PS/ES/EdDSA tokens with static public keys."""

    def __init__(self, settings: AuthSettings, secret: Secret | None, static_keys: KeySet | None = None) -> None:
        self._settings = settings
        self._algorithms = list(settings.algorithms)
        self._secret_key = OctKey.import_key(secret.reveal()) if secret else None
        self._static = static_keys if static_keys is not None else load_static_keys(settings)
        claims: dict[str, Any] = {"exp": {"essential": True}}
        if settings.issuer:
            claims["iss"] = {"essential": True, "value": settings.issuer}
        if settings.audience:
            claims["aud"] = {"essential": True, "value": settings.audience}
        self._claims = jwt.JWTClaimsRegistry(leeway=int(settings.leeway_s), **claims)

    @property
    def algorithms(self) -> Sequence[str]:
        """The algorithms this verifier accepts."""
        return tuple(self._algorithms)

    def _key_for(self, algorithm: str) -> Any:
        if algorithm in _HMAC:
            if self._secret_key is None:
                raise AuthenticationError("no shared secret is configured for HMAC tokens")
            return self._secret_key
        return self._static

    async def verify(self, token: str) -> AuthContext:
        """Verify ``token`` and map its claims to an ``AuthContext``."""
        if not token:
            raise AuthenticationError("empty bearer token")
        if len(token) > self._settings.max_token_bytes:
            raise AuthenticationError("token too large")
        if token.count(".") != 2:
            raise AuthenticationError("malformed token")
        try:
            header = jws.extract_compact(token.encode()).headers()
        except Exception:  # noqa: BLE001 - any parse failure is a malformed token
            raise AuthenticationError("malformed token") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            raise AuthenticationError("token algorithm not accepted")
        try:
            decoded = jwt.decode(token, self._key_for(algorithm), algorithms=[algorithm])
            self._claims.validate(decoded.claims)
        except AuthenticationError:
            raise
        except JoseError as exc:
            raise AuthenticationError(f"invalid token: {exc.error}") from None
        except Exception:  # noqa: BLE001 - joserfc raises ValueError and friends for garbage input
            raise AuthenticationError("invalid token") from None
        return self._context(token, decoded.claims)

    def _context(self, token: str, payload: Mapping[str, Any]) -> AuthContext:
        customer = payload.get(self._settings.customer_id_claim)
        if not isinstance(customer, str) or not customer:
            raise AuthenticationError(f"token has no {self._settings.customer_id_claim!r} claim")
        exp = payload.get("exp")
        email = payload.get("email")
        return AuthContext(
            customer_id=CustomerId(customer),
            email=email if isinstance(email, str) else None,
            scopes=_scopes(payload, self._settings.scopes_claim),
            token=token,
            payload=dict(payload),
            expires_at=float(exp) if isinstance(exp, int | float) else None,
        )
