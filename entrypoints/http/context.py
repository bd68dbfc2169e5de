"""HTTP boundary: per-request context (request id, timing, structured-log binding) and the request log line."""

from __future__ import annotations

import re
import time
import uuid
from typing import Final

import structlog
from quart import Quart, Response, g, request, websocket

__all__ = ["REQUEST_ID_HEADER", "install_request_context", "valid_request_id"]

REQUEST_ID_HEADER: Final = "X-Request-ID"
_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_log = structlog.get_logger("switchyard.http")


def valid_request_id(value: str | None) -> str:
    """The client's id when well-formed (short, no spaces or control characters), else a fresh one."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def _route() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "<unmatched>"


def install_request_context(app: Quart) -> None:
    """Bind request id, route and timing for every HTTP request and WebSocket; log one line per request."""

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
        structlog.contextvars.bind_contextvars(
            request_id=g.request_id, route=rule.rule if rule is not None else "<unmatched>"
        )

    @app.after_request
    async def _finish_request(response: Response) -> Response:
        started = getattr(g, "started", None)
        duration_ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        request_id = getattr(g, "request_id", None) or valid_request_id(None)
        response.headers[REQUEST_ID_HEADER] = request_id
        response.headers["Server-Timing"] = f"app;dur={duration_ms:.2f}"
        auth = getattr(g, "auth", None)
        _log.info(
            "http_request",
            method=request.method,
            route=_route(),
            path=request.path,
            status=response.status_code,
            duration_ms=round(duration_ms, 2),
            bytes=response.content_length,
            request_id=request_id,
            customer_id=getattr(auth, "customer_id", None),
        )
        return response
