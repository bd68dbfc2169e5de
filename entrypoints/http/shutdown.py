"""HTTP boundary: the graceful drain of a serving process.

Hypercorn runs the app's lifespan shutdown only after every connection is gone: too late to tell a connected client
how its stream ended. So the server runner (``entrypoints/serve.py``) awaits ``drain(app)`` as soon as a stop signal
arrives, before Hypercorn stops accepting connections:

1. the StreamingManager refuses new streams (a retryable 503 ``service_unavailable``; other requests are still
   served, as a load balancer may route here until it notices), gives running producers ``http.shutdown_grace_s``
   to finish (``done``), then ends the rest with ``cancelled`` (reason ``shutdown``);
2. SSE responses and WebSocket subscriptions still delivering get up to ``streaming.send_timeout_s`` to hand those
   terminal events to their clients (an SSE response ends right after its terminal event);
3. every WebSocket still open is closed with 1001 (going away).

Hypercorn then closes idle connections, waits up to ``http.graceful_timeout_s`` for the rest and runs the lifespan
shutdown (``after_serving``), which stops the container's resources and so flushes the usage ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Iterator
from typing import Any, Final

import structlog
from quart import Quart, current_app, has_app_context, websocket

from settings import Settings

__all__ = ["Drain", "current_drain", "drain", "install_drain"]

_log = structlog.get_logger("switchyard.http")
_EXTENSION: Final = "switchyard.drain"
_GOING_AWAY: Final = 1001  # RFC 6455: the server is going down


class Drain:
    """What a serving process must finish before it closes: stream deliveries in flight and open WebSockets."""

    def __init__(self) -> None:
        self._deliveries = 0
        self._idle: asyncio.Event | None = None  # made by the waiter: an app may outlive the loop it was built in
        self._sockets: dict[asyncio.Task[Any], Any] = {}
        self.started = False

    @property
    def deliveries(self) -> int:
        """SSE responses and WebSocket subscriptions delivering stream events right now."""
        return self._deliveries

    @contextlib.contextmanager
    def delivering(self) -> Iterator[None]:
        """Count one delivery for as long as the block runs."""
        self._deliveries += 1
        try:
            yield
        finally:
            self._deliveries -= 1
            if self._deliveries == 0 and self._idle is not None:
                self._idle.set()

    async def deliveries_done(self, timeout_s: float) -> bool:
        """Wait until no delivery is running (``False`` when ``timeout_s`` passed first)."""
        if self._deliveries == 0:
            return True
        self._idle = asyncio.Event()
        try:
            async with asyncio.timeout(max(0.0, timeout_s)):
                await self._idle.wait()
        except TimeoutError:
            return False
        finally:
            self._idle = None
        return True

    def register_socket(self, task: asyncio.Task[Any], socket: Any) -> None:
        """Remember an open WebSocket (its handler task and Quart's ``Websocket``) until its handler ends."""
        self._sockets[task] = socket
        task.add_done_callback(self._sockets.pop)

    async def close_sockets(self, timeout_s: float) -> int:
        """Close every WebSocket still open with 1001 and end its handler, all within ``timeout_s`` (a peer that
        stopped reading cannot hold the shutdown); returns how many there were."""
        sockets = [(task, socket) for task, socket in self._sockets.items() if not task.done()]
        if not sockets:
            return 0
        # Already closed by its handler, the peer gone or stuck: there is nothing more to say on it.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(max(0.0, timeout_s)):
                await asyncio.gather(
                    *(socket.close(_GOING_AWAY, "server shutting down") for _, socket in sockets),
                    return_exceptions=True,
                )
        for task, _ in sockets:
            # The handler would wait for the peer's close reply; end it now (Hypercorn then closes the connection,
            # after the close frame already written).
            task.cancel()
        await asyncio.wait([task for task, _ in sockets], timeout=max(0.0, timeout_s))
        return len(sockets)


def install_drain(app: Quart) -> Drain:
    """Give ``app`` its ``Drain`` and register every WebSocket with it (the hook runs in the handler's task)."""
    state = Drain()
    app.extensions[_EXTENSION] = state

    @app.before_websocket
    async def _register_socket() -> None:
        task = asyncio.current_task()
        if task is not None:
            state.register_socket(task, websocket._get_current_object())  # type: ignore[attr-defined]

    return state


def current_drain() -> Drain | None:
    """The running app's ``Drain`` (``None`` outside an app context, e.g. in unit tests of the delivery code)."""
    if not has_app_context():
        return None
    state = current_app.extensions.get(_EXTENSION)
    return state if isinstance(state, Drain) else None


async def drain(app: Quart) -> None:
    """Steps 1-3 of the module docstring, once; bounded by the grace, the send timeout and the manager's own bounds."""
    state = app.extensions.get(_EXTENSION)
    if not isinstance(state, Drain) or state.started:
        return
    state.started = True
    container: Any = app.extensions["container"]
    settings: Settings = container.settings()
    grace_s = float(settings.http.shutdown_grace_s)
    _log.info("shutdown_draining", grace_s=grace_s, deliveries=state.deliveries)
    if container.video_worker.initialized:
        # Hand the video jobs back first: their progress streams then end now (a new holder resumes the jobs), not
        # after the whole grace as cancelled producers.
        worker = container.video_worker()
        if inspect.isawaitable(worker):
            worker = await worker
        await worker.stop()
    if container.streaming_manager.initialized:  # never start the manager just to stop it
        manager = container.streaming_manager()
        if inspect.isawaitable(manager):
            manager = await manager
        await manager.drain(grace_s)
    send_timeout_s = float(settings.streaming.send_timeout_s)
    delivered = await state.deliveries_done(send_timeout_s)
    closed = await state.close_sockets(send_timeout_s)
    _log.info("shutdown_drained", deliveries_left=state.deliveries, all_delivered=delivered, websockets_closed=closed)
