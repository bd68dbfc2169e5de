"""HTTP boundary: per-request context (request id, timing, structured-log binding), request logging and metrics.

HTTP: one ``http_request`` log line per request (method, route, path, status, duration, bytes, request id, customer
id), ``http_requests_total`` / ``http_request_duration_seconds`` by route template (never the raw path, so label
cardinality stays bounded), and ``X-Request-ID`` / ``Server-Timing`` headers. Streaming responses are measured up
to their headers: the body is still being sent when ``after_request`` runs.

WebSocket: every connection gets a ``WebSocketSession`` automatically (``before_websocket`` opens it,
``teardown_websocket`` closes it, whatever way the handler ends). Messages sent and received through ``websocket``
are counted, and the close code is taken from ``websocket.close(...)``; the close writes one ``websocket_connection``
log line and moves the ``websocket_connections`` gauge. Handlers need do nothing; ``current_websocket_session()``
(or ``async with websocket_session() as session``) lets them add counts or set ``close_code`` themselves.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Final

import structlog
from attrs import define, field
from flask.logging import default_handler
from quart import Quart, Response, current_app, g, request, websocket

from domain.errors import ServiceError
from entrypoints.http.errors import ws_close_code_for
from ports.metrics import Metrics

__all__ = [
    "REQUEST_ID_HEADER",
    "WebSocketSession",
    "current_websocket_session",
    "install_request_context",
    "valid_request_id",
    "websocket_session",
]

REQUEST_ID_HEADER: Final = "X-Request-ID"
_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_UNMATCHED: Final = "<unmatched>"
_NORMAL_CLOSURE: Final = 1000
_log = structlog.get_logger("switchyard.http")


def valid_request_id(value: str | None) -> str:
    """The client's id when well-formed (short, no spaces or control characters), else a fresh one."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return os.urandom(16).hex()  # 32 hex digits, as uuid4().hex, at a fifth of its cost


def _route() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else _UNMATCHED


def _metrics() -> Metrics:
    # The container's provider called as it is (overrides still apply): on every request, ``@inject``'s resolver cost
    # more than the counting it served.
    metrics: Metrics = current_app.extensions["container"].metrics()
    return metrics


@define
class WebSocketSession:
    """One WebSocket connection's bookkeeping: counts, close code and timing (logged once when it ends)."""

    route: str
    path: str
    request_id: str
    started: float = field(factory=time.perf_counter)
    connected_at: datetime = field(factory=lambda: datetime.now(UTC))
    received: int = 0
    sent: int = 0
    accepted: bool = False
    close_code: int | None = None
    close_reason: str = ""
    closed: bool = False

    @property
    def duration_ms(self) -> float:
        """Milliseconds since the handshake began."""
        return (time.perf_counter() - self.started) * 1000


def current_websocket_session() -> WebSocketSession:
    """The session of the current WebSocket (``RuntimeError`` outside a WebSocket context)."""
    session = getattr(g, "ws_session", None)
    if not isinstance(session, WebSocketSession):
        raise RuntimeError("no WebSocket session: call this inside a WebSocket handler")
    return session


@asynccontextmanager
async def websocket_session() -> AsyncIterator[WebSocketSession]:
    """The current session; a ``ServiceError`` escaping the block sets its close code from the error table."""
    session = current_websocket_session()
    try:
        yield session
    except ServiceError as exc:
        if session.close_code is None:
            session.close_code = ws_close_code_for(exc)
        raise


def _instrument(session: WebSocketSession, metrics: Metrics) -> None:
    """Count messages and capture the close code of the current ``websocket`` by wrapping its transport calls."""
    socket: Any = websocket._get_current_object()  # type: ignore[attr-defined]
    send: Callable[[str | bytes], Awaitable[None]] = socket._send
    receive: Callable[[], Awaitable[str | bytes]] = socket._receive
    close: Callable[[int, str], Awaitable[None]] = socket._close
    accept: Callable[..., Awaitable[None]] = socket._accept

    async def counted_send(data: str | bytes) -> None:
        await send(data)
        session.sent += 1
        metrics.increment("websocket_messages_total", direction="out")

    async def counted_receive() -> str | bytes:
        data = await receive()
        session.received += 1
        metrics.increment("websocket_messages_total", direction="in")
        return data

    async def recorded_close(code: int, reason: str = "") -> None:
        if session.close_code is None:
            session.close_code, session.close_reason = code, reason
        await close(code, reason)

    async def recorded_accept(*args: Any, **kwargs: Any) -> None:
        await accept(*args, **kwargs)
        session.accepted = True

    socket._send, socket._receive, socket._close, socket._accept = (
        counted_send,
        counted_receive,
        recorded_close,
        recorded_accept,
    )


def _end_websocket(exc: BaseException | None) -> None:
    session = getattr(g, "ws_session", None)
    if not isinstance(session, WebSocketSession) or session.closed:
        return
    session.closed = True
    outcome = "closed"
    if session.close_code is None:
        if isinstance(exc, asyncio.CancelledError):
            outcome = "client_disconnected"  # Quart cancels the handler when the peer goes away
        elif exc is not None:
            session.close_code, outcome = ws_close_code_for(exc), "error"
        elif session.accepted:
            session.close_code = _NORMAL_CLOSURE  # Quart closes an accepted socket with 1000 after the handler
        else:
            outcome = "rejected"
    auth = getattr(g, "auth", None)
    _metrics().gauge_add("websocket_connections", -1.0)
    _log.info(
        "websocket_connection",
        route=session.route,
        path=session.path,
        connected_at=session.connected_at.isoformat(),
        duration_ms=round(session.duration_ms, 2),
        messages_in=session.received,
        messages_out=session.sent,
        close_code=session.close_code,
        outcome=outcome,
        request_id=session.request_id,
        customer_id=getattr(auth, "customer_id", None),
    )


def install_request_context(app: Quart) -> None:
    """Bind request id, route and timing for every HTTP request and WebSocket; log and measure each one."""
    # The app's logger ("switchyard") is the parent of every "switchyard.*" logger: the stderr handler Flask gives it
    # when logging is not configured yet (a served app's is configured later, as a resource) printed each of their
    # lines a second time, unredacted and unformatted. Records reach the root handlers (structlog's) without it.
    app.logger.removeHandler(default_handler)

    @app.before_request
    async def _begin_request() -> None:
        g.started = time.perf_counter()
        g.request_id = valid_request_id(request.headers.get(REQUEST_ID_HEADER))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=g.request_id, route=_route())

    @app.before_websocket
    async def _begin_websocket() -> None:
        g.started = time.perf_counter()
        g.request_id = valid_request_id(websocket.headers.get(REQUEST_ID_HEADER))
        structlog.contextvars.clear_contextvars()
        rule = websocket.url_rule
        route = rule.rule if rule is not None else _UNMATCHED
        structlog.contextvars.bind_contextvars(request_id=g.request_id, route=route)
        session = WebSocketSession(route=route, path=websocket.path, request_id=g.request_id)
        metrics = _metrics()
        _instrument(session, metrics)
        g.ws_session = session
        metrics.gauge_add("websocket_connections", 1.0)

    @app.teardown_websocket
    async def _finish_websocket(exc: BaseException | None) -> None:
        _end_websocket(exc)

    @app.after_request
    async def _finish_request(response: Response) -> Response:
        started = getattr(g, "started", None)
        duration_s = time.perf_counter() - started if started is not None else 0.0
        duration_ms = duration_s * 1000
        request_id = getattr(g, "request_id", None) or valid_request_id(None)
        response.headers[REQUEST_ID_HEADER] = request_id
        response.headers["Server-Timing"] = f"app;dur={duration_ms:.2f}"
        auth = getattr(g, "auth", None)
        route, method = _route(), request.method
        metrics = _metrics()
        metrics.increment("http_requests_total", route=route, method=method, status=str(response.status_code))
        metrics.observe("http_request_duration_seconds", duration_s, route=route, method=method)
        _log.info(
            "http_request",
            method=method,
            route=route,
            path=request.path,
            status=response.status_code,
            duration_ms=round(duration_ms, 2),
            bytes=response.content_length,
            request_id=request_id,
            customer_id=getattr(auth, "customer_id", None),
        )
        return response
