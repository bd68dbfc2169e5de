"""Use case: API keys. Issue (the key is shown once), list, revoke, and verify a key into an ``AuthContext``.

``verify`` implements the ``TokenVerifier`` port, so a key is accepted wherever a bearer JWT is (``CredentialVerifier``
routes ``sy-`` tokens here). Revocation must hold on every instance the moment ``revoke`` returns, so a cached key is
trusted only under the current value of a ``CacheGeneration`` counter that every revocation bumps after its commit:

- with Redis configured, the counter lives there: a verify costs one ``GET`` and, while the counter is unchanged, no
  database query; a revocation on any instance makes every other instance's next verify re-read the key;
- on the embedded default (no Redis) there is no shared counter, so nothing is cached: each verify reads the key by
  its hash (one indexed SQLite query, well under a millisecond), which is consistent across workers for free.

When the counter cannot be read, the key is read from the database and not cached. ``last_used_at`` is kept in
memory and written in batches every ``touch_interval_s`` (and at shutdown), never on the request's path.

A connection that outlives its handshake (a WebSocket) is told when its key is revoked through ``watch``
(``services/key_watch.py``: one look per ``recheck_s`` per process, one counter read while nothing changed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from attrs import frozen

from domain.api_keys import KEY_PREFIX, ApiKey, IssuedKey, display_prefix, hash_key, looks_like_key
from domain.auth import AuthContext
from domain.errors import AuthenticationError, ConflictError, NotFoundError, ValidationError
from domain.quotas import Limits
from domain.types import CustomerId
from ports.api_keys import ApiKeyStore, CacheGeneration
from services.key_watch import KeyWatcher

__all__ = ["ApiKeyService", "api_key_service_resource"]

_log = logging.getLogger("switchyard.api_keys")
_MAX_NAME: Final = 200
_MAX_SCOPES: Final = 64
_MAX_MODELS: Final = 256
_SCOPE_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:/*")


@frozen
class _Cached:
    """A key (or ``None``: no such key) read under generation ``generation`` at monotonic time ``at``."""

    key: ApiKey | None
    generation: int
    at: float


class ApiKeyService:
    """Issues, lists, revokes and verifies keys; cached verification is bounded by a shared generation counter."""

    def __init__(
        self,
        store: ApiKeyStore,
        generation: CacheGeneration | None = None,
        *,
        cache_ttl_s: float = 60.0,
        cache_size: int = 10_000,
        touch_interval_s: float = 30.0,
        recheck_s: float = 2.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
        secret: Callable[[], str] = lambda: secrets.token_urlsafe(32),
    ) -> None:
        self._store = store
        self._generation = generation
        self._cache_ttl_s = cache_ttl_s
        self._cache_size = cache_size
        self._touch_interval_s = touch_interval_s
        self._now = now
        self._clock = clock
        self._secret = secret
        self._cache: dict[str, _Cached] = {}
        self._used: dict[str, datetime] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._watcher = KeyWatcher(store, generation, interval_s=recheck_s, now=now)

    # --- administration -------------------------------------------------------------------------------------------

    async def create(
        self,
        customer_id: str,
        name: str,
        *,
        scopes: Iterable[str] = (),
        expires_in_s: float | None = None,
        models: Iterable[str] | None = None,
        limits: Limits | None = None,
    ) -> IssuedKey:
        """A new key for ``customer_id``; the returned ``secret`` is the only time the key is ever available.
        ``limits`` are the key's own (each ``None`` or >= 0), enforced with its customer's."""
        if not customer_id.strip():
            raise ValidationError("customer_id", "must not be empty")
        if not name.strip() or len(name) > _MAX_NAME:
            raise ValidationError("name", f"must be 1 to {_MAX_NAME} characters")
        granted = _checked("scopes", scopes, _MAX_SCOPES)
        allowed = None if models is None else _checked("models", models, _MAX_MODELS)
        if allowed is not None and not allowed:
            raise ValidationError("models", "must name at least one model (leave it out to allow every model)")
        if expires_in_s is not None and not expires_in_s > 0:
            raise ValidationError("expires_in_s", "must be positive")
        own = (limits or Limits()).check("limits.")
        created = self._now()
        secret = f"{KEY_PREFIX}{self._secret()}"
        key = ApiKey(
            id=f"key_{uuid.uuid4().hex}",
            prefix=display_prefix(secret),
            customer_id=CustomerId(customer_id),
            name=name,
            created_at=created,
            scopes=granted,
            models=allowed,
            expires_at=None if expires_in_s is None else created + timedelta(seconds=expires_in_s),
            limits=own,
        )
        await self._store.add(key, hash_key(secret))
        _log.info("api_key_created", extra={"key_id": key.id, "customer_id": customer_id})
        return IssuedKey(key, secret)

    async def list(self, customer_id: str | None = None) -> Sequence[ApiKey]:
        """Every key (of ``customer_id`` when given), newest first; never the keys themselves."""
        return await self._store.list(customer_id)

    async def revoke(self, id_or_prefix: str) -> ApiKey:
        """Revoke the key with this id, display prefix or the key itself; refused everywhere once this returns.

        404 when nothing matches, 409 when a prefix matches several keys (give the id instead)."""
        wanted = id_or_prefix.strip()
        if len(wanted) < len(KEY_PREFIX) + 4:
            raise ValidationError("key", "give the key's id or at least 4 characters of its prefix after 'sy-'")
        if looks_like_key(wanted):  # the whole key: it names exactly one
            by_hash = await self._store.find_by_hash(hash_key(wanted))
            found: Sequence[ApiKey] = [by_hash] if by_hash is not None else []
        else:  # only the display prefix is stored: more characters than it holds cannot narrow the search
            found = await self._store.find(display_prefix(wanted) if wanted.startswith(KEY_PREFIX) else wanted)
        if not found:
            raise NotFoundError(f"no API key matches {wanted!r}", context={"key": wanted})
        if len(found) > 1:
            raise ConflictError(
                f"{len(found)} API keys match {wanted!r}; give the key id instead",
                context={"matches": [key.id for key in found]},
            )
        revoked = await self._store.revoke(found[0].id, self._now())
        if revoked is None:  # deleted between the two calls
            raise NotFoundError(f"no API key matches {wanted!r}", context={"key": wanted})
        if self._generation is not None:
            # After the commit: an instance that reads the new value re-reads the key and sees it revoked.
            await self._generation.bump()
        self._cache.clear()
        self._watcher.poke()  # sockets on this instance close now; others at their next look
        _log.info("api_key_revoked", extra={"key_id": revoked.id, "customer_id": revoked.customer_id})
        return revoked

    # --- verification (the TokenVerifier port) ---------------------------------------------------------------------

    async def verify(self, token: str) -> AuthContext:
        """The caller a key stands for; ``AuthenticationError`` for an unknown, revoked, expired or malformed key."""
        if not looks_like_key(token):
            raise AuthenticationError("malformed API key")
        key = await self._lookup(hash_key(token))
        if key is None:
            raise AuthenticationError("unknown API key")
        if key.revoked:
            raise AuthenticationError("API key revoked")
        now = self._now()
        if key.expired(now):
            raise AuthenticationError("API key expired")
        self._touch(key.id, now)
        return AuthContext(
            customer_id=key.customer_id,
            scopes=key.scopes,
            token=token,
            payload={"key_id": key.id, "key_name": key.name},
            expires_at=None if key.expires_at is None else key.expires_at.timestamp(),
            key_id=key.id,
            models=key.models,
            key_limits=key.limits if key.limits.any else None,
        )

    def watch(self, token: str) -> contextlib.AbstractContextManager[asyncio.Future[str]]:
        """While the block runs: a future resolved with the reason once the key ``token`` is revoked or deleted."""
        return self._watcher.watch(hash_key(token))

    async def _lookup(self, key_hash: str) -> ApiKey | None:
        generation = await self._current_generation()
        if generation is None:
            return await self._store.find_by_hash(key_hash)
        cached = self._cache.get(key_hash)
        if cached is not None and cached.generation == generation and self._clock() - cached.at < self._cache_ttl_s:
            return cached.key
        key = await self._store.find_by_hash(key_hash)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()  # bounded: unknown keys (negative entries) must not grow it without end
        # Tagged with the generation read *before* the query: a revocation committed meanwhile bumped past it.
        self._cache[key_hash] = _Cached(key, generation, self._clock())
        return key

    async def _current_generation(self) -> int | None:
        if self._generation is None:
            return None
        try:
            return await self._generation.current()
        except Exception:  # noqa: BLE001 - the counter's store is down: trust nothing cached, read the database
            _log.warning("api_key_generation_unavailable")
            return None

    # --- last used, off the request path ---------------------------------------------------------------------------

    def _touch(self, key_id: str, at: datetime) -> None:
        self._used[key_id] = at
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_later(), name="api-key-last-used")

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._touch_interval_s)
        await self.flush()

    async def flush(self) -> None:
        """Write the pending last-used times now (a failure keeps them for the next flush)."""
        pending, self._used = self._used, {}
        if not pending:
            return
        try:
            await self._store.touch(pending)
        except Exception:  # noqa: BLE001 - last-used is advisory: keep the times, try again later
            _log.warning("api_key_touch_failed", extra={"keys": len(pending)})
            for key_id, at in pending.items():
                self._used.setdefault(key_id, at)

    async def aclose(self) -> None:
        """Stop the background flush and the key watch, and write what is pending."""
        await self._watcher.aclose()
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()


def _checked(field: str, values: Iterable[str], most: int) -> frozenset[str]:
    items = frozenset(value.strip() for value in values)
    if len(items) > most:
        raise ValidationError(field, f"at most {most} entries")
    for item in items:
        if not item or len(item) > 200 or not set(item) <= _SCOPE_CHARS:
            raise ValidationError(field, f"{item!r} is not a valid entry (letters, digits and _-.:/* only)")
    return items


async def api_key_service_resource(
    store: ApiKeyStore, generation: CacheGeneration | None, schema_ready: object = None, recheck_s: float = 2.0
) -> AsyncIterator[ApiKeyService]:
    """Container resource: the key service; at shutdown its pending last-used times are written.
    ``schema_ready`` only orders start-up (the keys table exists once migrations ran)."""
    del schema_ready
    service = ApiKeyService(store, generation, recheck_s=recheck_s)
    try:
        yield service
    finally:
        await service.aclose()
