"""Driving adapter helper: the serve loop of a socket session that relays both ways (live transcription, realtime
voice).

One task receives the client's messages into the run while another delivers the run's updates to the client; the
session is over when delivery ends (it sends the one terminal message). If the handler itself is cancelled (the
client left, or its token expired), the run is aborted so it ends as cancelled, and delivery gets a short grace to
finish that ending (the client may be gone: then nobody reads it) before it is cancelled too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, Final

__all__ = ["CANCEL_GRACE_S", "relay"]

CANCEL_GRACE_S: Final = 5.0
"""How long delivery may take to end an aborted session once the handler was cancelled."""


async def relay(
    receive: Coroutine[Any, Any, None],
    deliver: Coroutine[Any, Any, None],
    *,
    abort: Callable[[], None],
    name: str,
) -> None:
    """Run ``receive`` and ``deliver`` until delivery ends; on cancellation call ``abort`` (the session ends as
    cancelled), give delivery ``CANCEL_GRACE_S`` to finish, then re-raise."""
    receiver = asyncio.create_task(receive, name=f"{name}-receive")
    deliverer = asyncio.create_task(deliver, name=f"{name}-deliver")
    try:
        await asyncio.wait({deliverer})  # not `await deliverer`: a cancel here must not cancel it
    except asyncio.CancelledError:  # the client left, or its token expired: the session ends as cancelled
        abort()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CANCEL_GRACE_S):
                await asyncio.wait({deliverer})
        deliverer.cancel()
        raise
    finally:
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)
