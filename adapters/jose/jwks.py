"""Driven adapter: a JWKS endpoint as a ``KeySource`` (httpx fetch with a deadline, TTL cache, guarded refresh).

Cache rules:
- a fetched set is authoritative for ``ttl_s``; a token whose ``kid`` is not in it triggers one refresh, at most
  once per ``min_refresh_interval_s`` (so a flood of random kids costs the issuer one request per interval);
- when the issuer is down, cached keys keep working until their TTL, then every lookup raises
  ``ServiceUnavailableError`` (retrying the issuer at most once per ``min_refresh_interval_s``);
- concurrent lookups share one fetch (a lock), and an answer is bounded in size and time.

Only public signature keys of type RSA, EC or OKP are kept: symmetric (``oct``) keys from a key set are never used,
so an HMAC token cannot be verified with anything but the configured shared secret.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import structlog
from joserfc.jwk import JWKRegistry

from domain.errors import ServiceUnavailableError
from settings.model import AuthSettings

__all__ = ["MAX_JWKS_BYTES", "HttpxJwksKeySource", "jwks_key_source", "parse_jwks"]

MAX_JWKS_BYTES: Final = 1024 * 1024
_KEY_TYPES: Final = frozenset({"RSA", "EC", "OKP"})
_log = structlog.get_logger("switchyard.auth")

Jwk = Mapping[str, Any]


def parse_jwks(body: bytes) -> tuple[Jwk, ...]:
    """The usable public signature keys of a JWKS document; ``ValueError`` when it is not a key set at all."""
    document = json.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JSON Web Key Set (no 'keys' array)")
    usable: list[Jwk] = []
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") not in _KEY_TYPES:
            continue
        if entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid", ""), str):
            continue
        public = {k: v for k, v in entry.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "oth")}
        try:
            JWKRegistry.import_key(public)
        except Exception:  # noqa: BLE001 - one malformed key must not hide the others
            _log.warning("jwks_key_skipped", kid=str(entry.get("kid"))[:64], kty=entry.get("kty"))
            continue
        usable.append(public)
    return tuple(usable)


class HttpxJwksKeySource:
    """Serves the keys of the JWKS document at ``url``, fetched with httpx and cached as described above."""

    def __init__(
        self,
        url: str,
        *,
        ttl_s: float = 300.0,
        timeout_s: float = 3.0,
        min_refresh_interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = MAX_JWKS_BYTES,
    ) -> None:
        self._url = url
        self._host = urlsplit(url).netloc
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._min_interval_s = min_refresh_interval_s
        self._clock = clock
        self._max_bytes = max_bytes
        self._keys: tuple[Jwk, ...] = ()
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._failed_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many times the issuer was asked (observable by tests and metrics)

    async def keys_for(self, kid: str | None) -> Sequence[Jwk]:
        """Keys matching ``kid`` (all when None); refresh on an unknown kid or an expired set, within the limits."""
        cached = self._from_cache(kid, self._clock())
        if cached is not None:
            return cached
        async with self._lock:
            # Another lookup may have refreshed while this one waited: decide again before asking the issuer.
            now = self._clock()
            cached = self._from_cache(kid, now)
            if cached is not None:
                return cached
            return await self._refresh(kid, now)

    def _fresh(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < self._ttl_s

    def _lookup(self, kid: str | None) -> tuple[Jwk, ...]:
        if kid is None:
            return self._keys
        return tuple(key for key in self._keys if key.get("kid") == kid)

    def _from_cache(self, kid: str | None, now: float) -> Sequence[Jwk] | None:
        """An answer without asking the issuer, or None when a refresh is due and allowed."""
        if self._fresh(now):
            found = self._lookup(kid)
            refresh_allowed = self._attempted_at is None or now - self._attempted_at >= self._min_interval_s
            return found if found or not refresh_allowed else None
        if self._failed_at is not None and now - self._failed_at < self._min_interval_s:
            raise self._unavailable()
        return None

    async def _refresh(self, kid: str | None, now: float) -> Sequence[Jwk]:
        self._attempted_at = now
        self.fetches += 1
        try:
            keys = await self._fetch()
        except ServiceUnavailableError as error:
            self._failed_at = now
            _log.warning("jwks_fetch_failed", host=self._host, reason=error.message)
            if self._fresh(now):  # the cached set is still within its TTL: keep using it
                return self._lookup(kid)
            raise self._unavailable() from error
        self._keys, self._fetched_at, self._failed_at = keys, now, None
        _log.info("jwks_refreshed", host=self._host, keys=len(keys))
        return self._lookup(kid)

    def _unavailable(self) -> ServiceUnavailableError:
        return ServiceUnavailableError(
            "the token issuer's signing keys (JWKS) are unavailable; try again shortly",
            context={"service": "jwks", "host": self._host},
        )

    async def _fetch(self) -> tuple[Jwk, ...]:
        try:
            async with asyncio.timeout(self._timeout_s), httpx.AsyncClient(timeout=self._timeout_s) as client:
                body = await self._download(client)
        except ServiceUnavailableError:
            raise
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            raise ServiceUnavailableError(f"JWKS fetch failed: {type(exc).__name__}") from exc
        try:
            return parse_jwks(body)
        except (ValueError, RecursionError) as exc:  # json.JSONDecodeError is a ValueError
            raise ServiceUnavailableError(f"JWKS document is invalid: {exc}") from exc

    async def _download(self, client: httpx.AsyncClient) -> bytes:
        async with client.stream("GET", self._url, headers={"Accept": "application/json"}) as response:
            if response.status_code != 200:
                raise ServiceUnavailableError(f"JWKS endpoint answered {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise ServiceUnavailableError(f"JWKS document exceeds {self._max_bytes} bytes")
            return bytes(body)


def jwks_key_source(settings: AuthSettings) -> HttpxJwksKeySource | None:
    """The key source for ``auth.jwks_url`` (None when no JWKS URL is configured)."""
    if not settings.jwks_url:
        return None
    return HttpxJwksKeySource(
        settings.jwks_url,
        ttl_s=settings.jwks_cache_ttl_s,
        timeout_s=settings.jwks_timeout_s,
        min_refresh_interval_s=settings.jwks_min_refresh_interval_s,
    )
