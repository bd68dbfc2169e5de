"""Driven adapter: joserfc implementation of ``TokenVerifier`` (shared secret, static public keys, a JWKS source).

The accepted algorithms come from settings, never from the token header, and ``none`` is refused even when
configured. HMAC tokens are verified only with the shared secret; RS/PS/ES/EdDSA tokens only with public keys of the
matching type (static files first, then the ``KeySource``), so an HS256 token "signed" with an RSA public key is
just a bad signature. ``jku``, ``x5u``, ``x5c`` and embedded ``jwk`` headers are never consulted. ``exp`` is
required; ``nbf``/``iat`` are checked with a leeway; ``iss``/``aud`` when configured; the token's size and the
nesting depth of its claims are bounded. Every failure becomes ``AuthenticationError`` with a short, token-free
reason (or ``ServiceUnavailableError`` when the key set cannot be had).

A client sends the same token with every request, so a verified token's caller is kept for a short while, by the
token's SHA-256: ``VERIFIED_TTL_S`` at most, and never past the token's ``exp`` (a token only the leeway still admits
is verified every time). A token verified with a key from the issuer's key set is answered from memory only while
that key is still in the set the key source holds (so a retired key stops working when it did before, and an issuer
outage past the set's TTL is still a 503). Only successes are kept; a failure is decided afresh each time.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Final

from attrs import define, frozen
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, JoseError, MissingClaimError
from joserfc.jwk import JWKRegistry, Key, KeySet, import_key

from adapters.jose.minter import secret_key
from domain.auth import AuthContext
from domain.errors import AuthenticationError, ConfigurationError
from domain.types import CustomerId
from ports.auth import KeySource
from settings.model import AuthSettings
from settings.secret import Secret

__all__ = [
    "MAX_CLAIM_DEPTH",
    "MAX_KID_LENGTH",
    "VERIFIED_TTL_S",
    "JoseTokenVerifier",
    "VerifierStats",
    "load_static_keys",
]

MAX_CLAIM_DEPTH: Final = 16
MAX_KID_LENGTH: Final = 256
VERIFIED_TTL_S: Final = 30.0
_MAX_VERIFIED: Final = 4096  # distinct live tokens remembered; the oldest is forgotten first
_MAX_CANDIDATE_KEYS: Final = 8
_HMAC: Final = frozenset({"HS256", "HS384", "HS512"})
# Which key type may verify which algorithm family; anything else never reaches joserfc.
_KEY_TYPE_FOR_PREFIX: Final = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


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


def _too_deep(value: object, limit: int) -> bool:
    """True when containers nest deeper than ``limit`` (iterative: hostile input cannot exhaust the stack)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


@define
class VerifierStats:
    """What the verifier did so far (for tests): full verifications, and tokens answered from memory."""

    verified: int = 0
    remembered: int = 0


@frozen
class _Verified:
    """A verified caller, kept until ``until``; ``published``: the issuer's JWK that verified it (None: the secret or
    a static key), looked up again under ``kid`` on every use."""

    auth: AuthContext
    until: float
    kid: str | None
    published: Mapping[str, Any] | None


def _key_type_for(algorithm: str) -> str | None:
    return _KEY_TYPE_FOR_PREFIX.get(algorithm[:2])


def _claims_error(exc: JoseError) -> AuthenticationError:
    if isinstance(exc, ExpiredTokenError):
        return AuthenticationError("token expired")
    if isinstance(exc, MissingClaimError):
        return AuthenticationError(f"token is missing a required claim: {exc.description}")
    return AuthenticationError(f"invalid token claims: {exc.description or exc.error}")


class JoseTokenVerifier:
    """Verifies HS* tokens with the shared secret and RS/PS/ES/EdDSA tokens with static or JWKS public keys."""

    def __init__(
        self,
        settings: AuthSettings,
        secret: Secret | None,
        static_keys: KeySet | None = None,
        key_source: KeySource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if any(alg.lower() == "none" for alg in settings.algorithms):
            raise ConfigurationError("SWITCHYARD_AUTH_ALGORITHMS", "'none' is never an acceptable algorithm")
        self._settings = settings
        self._algorithms = frozenset(settings.algorithms)
        self._secret_key = secret_key(secret)
        self._static: KeySet = static_keys if static_keys is not None else load_static_keys(settings)
        self._key_source = key_source
        self._imported: dict[str, Key] = {}
        self._verified: dict[bytes, _Verified] = {}  # sha256(token) -> the caller it stands for
        self._verified_ttl_s = VERIFIED_TTL_S
        self._clock = clock  # wall-clock seconds, as ``exp`` is
        self.stats = VerifierStats()
        claims: dict[str, Any] = {"exp": {"essential": True}}
        if settings.issuer:
            claims["iss"] = {"essential": True, "value": settings.issuer}
        if settings.audience:
            claims["aud"] = {"essential": True, "value": settings.audience}
        self._claims = jwt.JWTClaimsRegistry(leeway=int(settings.leeway_s), **claims)

    @property
    def algorithms(self) -> Sequence[str]:
        """The algorithms this verifier accepts."""
        return tuple(sorted(self._algorithms))

    async def verify(self, token: str) -> AuthContext:
        """Verify ``token`` and map its claims to an ``AuthContext``."""
        if len(token) > self._settings.max_token_bytes:
            raise AuthenticationError("token too large")
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        now = self._clock()
        kept = self._verified.pop(digest, None)
        if kept is not None and now < kept.until and await self._still_published(kept):
            self._verified[digest] = kept
            self.stats.remembered += 1
            return kept.auth
        self.stats.verified += 1
        algorithm, kid = self._inspect(token)
        decoded, published = await self._decode(token, algorithm, kid)
        if _too_deep(decoded.claims, MAX_CLAIM_DEPTH):
            raise AuthenticationError("token claims are nested too deeply")
        try:
            self._claims.validate(decoded.claims)
        except JoseError as exc:
            raise _claims_error(exc) from None
        auth = self._context(token, decoded.claims)
        self._keep(digest, _Verified(auth, now + self._verified_ttl_s, kid, published), now)
        return auth

    def _keep(self, digest: bytes, verified: _Verified, now: float) -> None:
        """Remember a verified caller until the TTL or ``exp``, whichever comes first (not at all past ``exp``)."""
        if verified.auth.expires_at is not None and verified.auth.expires_at < verified.until:
            verified = _Verified(verified.auth, verified.auth.expires_at, verified.kid, verified.published)
        if verified.until <= now:
            return
        if len(self._verified) >= _MAX_VERIFIED:
            del self._verified[next(iter(self._verified))]
        self._verified[digest] = verified

    async def _still_published(self, verified: _Verified) -> bool:
        """The secret and static keys never change; a key from the issuer must still be in its current key set (the
        source refreshes that set after its TTL, and raises as it always would when the issuer is down)."""
        if verified.published is None or self._key_source is None:
            return True
        return verified.published in await self._key_source.keys_for(verified.kid)

    def _inspect(self, token: str) -> tuple[str, str | None]:
        """The header's algorithm and key id, after the cheap structural checks."""
        if not token:
            raise AuthenticationError("empty bearer token")
        if token.count(".") != 2:
            raise AuthenticationError("malformed token: expected three dot-separated segments")
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except Exception:  # noqa: BLE001 - any parse failure (base64, JSON, encoding) is a malformed token
            raise AuthenticationError("malformed token") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            raise AuthenticationError("token algorithm not accepted")
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or len(kid) > MAX_KID_LENGTH):
            raise AuthenticationError("malformed token: invalid key id")
        return algorithm, kid

    async def _decode(self, token: str, algorithm: str, kid: str | None) -> tuple[jwt.Token, Mapping[str, Any] | None]:
        """The decoded token and, when a key from the key source verified it, that key's JWK."""
        tried = 0
        async for key, published in self._candidate_keys(algorithm, kid):
            tried += 1
            try:
                return jwt.decode(token, key, algorithms=[algorithm]), published
            except BadSignatureError:
                continue
            except JoseError as exc:
                raise AuthenticationError(f"invalid token: {exc.error}") from None
            except Exception:  # noqa: BLE001 - joserfc raises ValueError, RecursionError ... for hostile input
                raise AuthenticationError("invalid token") from None
        if tried == 0:
            raise AuthenticationError("unknown signing key" if kid is not None else "no key can verify this token")
        raise AuthenticationError("invalid token signature")

    async def _candidate_keys(
        self, algorithm: str, kid: str | None
    ) -> AsyncIterator[tuple[Key, Mapping[str, Any] | None]]:
        """Keys that may verify ``algorithm``: the secret for HMAC; static then JWKS keys of the right type (each with
        its JWK when it came from the key source)."""
        if algorithm in _HMAC:
            if self._secret_key is None:
                raise AuthenticationError("no shared secret is configured for HMAC tokens")
            yield self._secret_key, None
            return
        key_type = _key_type_for(algorithm)
        count = 0
        for key in self._static.keys:
            # Static keys are few and their kids are often thumbprints the issuer never used: try each one.
            if key.key_type != key_type or count >= _MAX_CANDIDATE_KEYS:
                continue
            count += 1
            yield key, None
        if self._key_source is None:
            return
        for jwk in await self._key_source.keys_for(kid):
            if count >= _MAX_CANDIDATE_KEYS:
                return
            if jwk.get("kty") != key_type or jwk.get("alg", algorithm) != algorithm:
                continue
            count += 1
            yield self._import(jwk), jwk

    def _import(self, jwk: Mapping[str, Any]) -> Key:
        """Import a JWK once (RSA imports are not free), keyed by its canonical JSON."""
        cache_key = json.dumps(jwk, sort_keys=True)
        key = self._imported.get(cache_key)
        if key is None:
            if len(self._imported) >= 64:  # rotation leaves old keys behind: start over rather than grow
                self._imported.clear()
            key = JWKRegistry.import_key(dict(jwk))
            self._imported[cache_key] = key
        return key

    def _context(self, token: str, payload: Mapping[str, Any]) -> AuthContext:
        customer = payload.get(self._settings.customer_id_claim)
        if not isinstance(customer, str) or not customer:
            raise AuthenticationError(f"token has no {self._settings.customer_id_claim!r} claim")
        email = payload.get("email")
        return AuthContext(
            customer_id=CustomerId(customer),
            email=email if isinstance(email, str) else None,
            scopes=_scopes(payload, self._settings.scopes_claim),
            token=token,
            payload=dict(payload),
            expires_at=_expiry(payload.get("exp")),
        )


def _expiry(exp: object) -> float | None:
    """``exp`` as a float timestamp; a finite but absurd integer (beyond float range) counts as no expiry."""
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    try:
        value = float(exp)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None
