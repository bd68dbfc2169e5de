"""Use case helper: a session whose client leaves while it is still opening ends at once.

Live transcription and realtime voice open their vendor session through the attempt runner, which may take a while:
connecting, a refusal and its retry after a backoff (a rate limit's ``Retry-After`` can be a minute), a fallback's
connect. The attempt's body watches the client's abort only while the vendor connects; between attempts the runner
sleeps, and nobody would notice the client is gone until the backoff ends. ``OpenInterrupt`` closes that gap: until
the session is open, an abort cancels the task reading the run's updates, which then ends the session as the abort
says. Once open, the attempt's own abort watcher stops the session instead (an abort there must reach the vendor in
order, not cut it).
"""

from __future__ import annotations

import asyncio

__all__ = ["OpenInterrupt"]


class OpenInterrupt:
    """Created in the task that reads the updates, before the run starts; ``opened`` once the vendor session is
    open; ``interrupted`` in its ``except asyncio.CancelledError`` (is the cancellation ours alone?); ``close`` in its
    ``finally``."""

    def __init__(self, aborted: asyncio.Event, *, name: str = "open-interrupt") -> None:
        self._task = asyncio.current_task()
        self._open = False
        self._fired = False
        self._watcher = asyncio.create_task(aborted.wait(), name=name)
        self._watcher.add_done_callback(self._fire)

    def _fire(self, watcher: asyncio.Task[bool]) -> None:
        if watcher.cancelled() or self._open or self._task is None or self._task.done():
            return
        self._fired = True
        self._task.cancel()

    def opened(self) -> None:
        """The vendor session is open: an abort no longer cancels the reader."""
        self._open = True

    def interrupted(self) -> bool:
        """Whether the cancellation being handled is ours alone (then it is consumed); ``False``: someone else
        cancelled the reader too, and the cancellation must go on."""
        if not self._fired or self._task is None:
            return False
        self._fired = False
        return self._task.uncancel() == 0

    def close(self) -> None:
        """Stop watching (the run ended)."""
        self._watcher.cancel()
