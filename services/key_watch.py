"""Use case helper: long-lived connections authenticated with an API key learn promptly that the key was revoked.

A WebSocket checks its key once, at the handshake; ``KeyWatcher.watch`` then hands it a future that resolves with
the reason (``API key revoked`` / ``expired`` / ``deleted``) once the key stops being valid, and the socket closes
with 4401 (``entrypoints/http/auth.py``). One task per process looks, every ``interval_s``, for every key with an
open socket, and keeps it cheap:

- with the shared ``CacheGeneration`` counter (Redis), a look is one read of the counter; the keys are re-read from
  the database only when it moved (some key, anywhere, was revoked since the last look);
- without it (the embedded default), each distinct watched key is re-read by its hash (one indexed query each);
- a revocation on this instance wakes the task at once, so a socket on the same instance closes without waiting.

When the database or the counter cannot be read, nothing is closed (an outage is not a revocation) and the next look
tries again. Expiry is not watched here: the socket's own watchdog closes it at ``exp``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from domain.api_keys import ApiKey
from ports.api_keys import ApiKeyStore, CacheGeneration

__all__ = ["KeyWatcher"]

_log = logging.getLogger("switchyard.api_keys")


def _invalid(key: ApiKey | None, now: datetime) -> str | None:
    if key is None:
        return "API key deleted"
    if key.revoked:
        return "API key revoked"
    if key.expired(now):
        return "API key expired"
    return None


class KeyWatcher:
    """Futures per watched key hash, resolved with the reason when the key is no longer valid."""

    def __init__(
        self,
        store: ApiKeyStore,
        generation: CacheGeneration | None,
        *,
        interval_s: float = 2.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._generation = generation
        self._interval_s = max(0.05, interval_s)  # 0 or less would spin
        self._now = now
        self._watchers: dict[str, set[asyncio.Future[str]]] = {}
        self._seen: int | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def watch(self, key_hash: str) -> Iterator[asyncio.Future[str]]:
        """A future resolved with why the key of ``key_hash`` stopped being valid (while the block runs)."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._watchers.setdefault(key_hash, set()).add(future)
        if self._task is None or self._task.done():
            self._seen = None  # a fresh task looks at every key once
            self._task = asyncio.create_task(self._run(), name="api-key-watch")
        try:
            yield future
        finally:
            futures = self._watchers.get(key_hash)
            if futures is not None:
                futures.discard(future)
                if not futures:
                    del self._watchers[key_hash]
            future.cancel()

    def poke(self) -> None:
        """Look now (a key was revoked on this instance)."""
        self._seen = None
        self._wake.set()

    async def _run(self) -> None:
        while self._watchers:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s):
                    await self._wake.wait()
            self._wake.clear()
            await self.look()

    async def look(self) -> None:
        """One look at every watched key (skipped while the shared counter has not moved)."""
        if not self._watchers:
            return
        generation: int | None = None
        if self._generation is not None:
            try:
                generation = await self._generation.current()
            except Exception:  # noqa: BLE001 - the counter is unreadable: look at the keys themselves
                generation = None
            if generation is not None and generation == self._seen:
                return
        now = self._now()
        try:
            for key_hash in list(self._watchers):
                reason = _invalid(await self._store.find_by_hash(key_hash), now)
                if reason is not None:
                    _log.info("api_key_socket_closed", extra={"reason": reason})
                    for future in self._watchers.get(key_hash, ()):
                        if not future.done():
                            future.set_result(reason)
        except Exception:  # noqa: BLE001 - the database is down: no verdict now, look again next time
            _log.warning("api_key_watch_failed")
            return
        self._seen = generation

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
