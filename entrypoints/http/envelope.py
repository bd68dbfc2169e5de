"""HTTP boundary: the ``ApiResponse[T]`` envelope every JSON route answers with, and its success constructor.

Error envelopes are built by the error table (``entrypoints.http.errors``), which owns the status of each error;
this module depends on nothing else of the HTTP package, so the table can import it and not the other way round.
"""

from __future__ import annotations

import time
from typing import Any, Generic, TypeVar

from attrs import field, frozen
from quart import g, has_request_context

__all__ = ["ApiResponse", "ErrorBody", "Meta", "Pagination", "api_ok", "current_meta"]

T = TypeVar("T")


@frozen
class Pagination:
    """Where a page sits in a listing."""

    total: int
    limit: int
    offset: int = 0


@frozen
class Meta:
    """Response metadata: request id, server time spent, pagination, and route-specific extras."""

    request_id: str | None = None
    duration_ms: float | None = None
    pagination: Pagination | None = None
    extra: dict[str, Any] = field(factory=dict)


@frozen
class ApiResponse(Generic[T]):
    """The envelope: ``code`` mirrors the HTTP status, ``success`` is ``code < 400``."""

    code: int
    success: bool
    message: str
    data: T | None = None
    meta: Meta = field(factory=Meta)


@frozen
class ErrorBody:
    """``data`` of an error envelope: the stable error code, its safe context and, for validation, every field error."""

    error: str
    type: str
    context: dict[str, Any] = field(factory=dict)
    errors: list[dict[str, str]] | None = None


def current_meta(pagination: Pagination | None = None, extra: dict[str, Any] | None = None) -> Meta:
    """Meta for the current request: its id and elapsed time so far."""
    if not has_request_context():
        return Meta(pagination=pagination, extra=extra or {})
    started = getattr(g, "started", None)
    duration = round((time.perf_counter() - started) * 1000, 3) if started is not None else None
    return Meta(
        request_id=getattr(g, "request_id", None), duration_ms=duration, pagination=pagination, extra=extra or {}
    )


def api_ok(
    data: T,
    *,
    message: str = "ok",
    code: int = 200,
    pagination: Pagination | None = None,
    extra: dict[str, Any] | None = None,
) -> ApiResponse[T]:
    """A success envelope around ``data``."""
    return ApiResponse(code=code, success=True, message=message, data=data, meta=current_meta(pagination, extra))
