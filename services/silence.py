"""Use case helper: ``SilenceBound``, the chat service's bound on how long a vendor may send nothing.

One bound per attempt, applied to every wait for the vendor's next event (the first one included), and cheap on the
hot path: each wait stores a deadline (no timer per event, where ``asyncio.timeout`` costs a timer handle created
and cancelled per event, several microseconds); a single timer re-arms itself to the latest deadline when it fires
early, and only cancels the task when it fires during a wait that is past its deadline. The cancellation is then
turned into ``ProviderTimeoutError``, unless somebody else cancelled the task too (a closed stream, a shutdown),
which wins, exactly like ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

from domain.errors import ProviderTimeoutError

__all__ = ["SilenceBound"]

T = TypeVar("T")


class SilenceBound:
    """Waits for ``anext(stream)`` at most ``timeout_s`` each time (``timeout_s <= 0``: no bound)."""

    def __init__(self, provider: str, timeout_s: float) -> None:
        self._provider = provider
        self._timeout = timeout_s
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._deadline = 0.0
        self._waiting = False
        self._fired = False
        self._handle: asyncio.TimerHandle | None = None

    async def next(self, stream: AsyncIterator[T]) -> T:
        """The stream's next item; ``StopAsyncIteration`` at its end; ``ProviderTimeoutError`` after the silence."""
        if self._timeout <= 0 or self._task is None:
            return await anext(stream)
        self._deadline = self._loop.time() + self._timeout
        if self._handle is None:
            self._handle = self._loop.call_at(self._deadline, self._check)
        self._waiting = True
        try:
            return await anext(stream)
        except asyncio.CancelledError:
            if self._fired:
                self._fired = False
                if self._task.uncancel() == 0:  # our cancellation alone: the vendor was silent
                    raise ProviderTimeoutError(
                        self._provider,
                        f"the provider sent nothing for {self._timeout:g} s",
                        context={"timeout_s": self._timeout},
                    ) from None
            raise
        finally:
            self._waiting = False
            if self._fired:  # the stream ended some other way after our cancel: leave no cancel request behind
                self._fired = False
                self._task.uncancel()

    def close(self) -> None:
        """Drop the timer (the attempt is over)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        self._handle = None
        if not self._waiting:
            return  # the next wait re-arms
        if self._loop.time() < self._deadline:
            self._handle = self._loop.call_at(self._deadline, self._check)
            return
        assert self._task is not None
        self._fired = True
        self._task.cancel()
