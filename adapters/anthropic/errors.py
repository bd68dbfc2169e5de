"""Driven adapter (Anthropic): translate Anthropic SDK and transport failures into domain errors.

An ``event: error`` inside a 200 stream reaches us as an ``APIStatusError`` whose status is 200; its body's
``error.type`` (``overloaded_error``, ``api_error``, ``rate_limit_error`` ...) stands for the HTTP status then. The
status goes through the adapter kit's one ladder (``adapters.kit.errors.status_error``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import anthropic
import httpx2

from adapters.kit.errors import generic_failure, retry_after_seconds, safe_reason, status_error
from domain.errors import ServiceError

__all__ = ["TRANSPORT_ERRORS", "map_anthropic_error", "safe_reason"]

_TIMEOUTS = (anthropic.APITimeoutError, httpx2.TimeoutException)
_UNREACHABLE = (anthropic.APIConnectionError, httpx2.TransportError, aiohttp.ClientConnectionError)
#: What the client's transport may raise past the SDK (httpx2's, or aiohttp's under the SDK's aiohttp transport,
#: which converts most of its errors to httpx2's and lets the rest through).
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx2.HTTPError, aiohttp.ClientError)
_RETRYABLE_TYPES = frozenset(("api_error", "overloaded_error", "timeout_error"))
_STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def _error_fields(body: object) -> tuple[str | None, object]:
    """(type, message) from ``{"type": "error", "error": {"type", "message"}}``."""
    if isinstance(body, Mapping):
        inner: Any = body.get("error", body)
        if isinstance(inner, Mapping):
            type_ = inner.get("type")
            return (type_ if isinstance(type_, str) else None), inner.get("message")
    return None, None


def map_anthropic_error(provider: str, exc: BaseException) -> ServiceError:
    """The domain error for an exception raised by the Anthropic SDK (or its transport) during one call."""
    if isinstance(exc, anthropic.APIStatusError):
        type_, message = _error_fields(exc.body)
        status = exc.status_code
        mid_stream = status == 200
        if mid_stream:
            status = _STATUS_BY_TYPE.get(type_ or "", 500)
        return status_error(
            provider,
            status,
            exc,
            message=message,
            field=_field,
            vendor_code=type_,
            # A mid-stream report arrives on the 200 response, whose headers say nothing about it.
            retry_after=retry_after_seconds(exc.response.headers) if status == 429 and not mid_stream else None,
            retryable=type_ in _RETRYABLE_TYPES,
            mid_stream=mid_stream,
        )
    return generic_failure(provider, exc, timeouts=_TIMEOUTS, unreachable=_UNREACHABLE)


def _field(reason: str) -> str:
    """Anthropic says a prompt is over the context window only in its message ("prompt is too long ...")."""
    return "messages" if "too long" in reason or "context" in reason else "request"
