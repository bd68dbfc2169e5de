"""Driven adapter (Anthropic): translate Anthropic SDK and transport failures into domain errors.

An ``event: error`` inside a 200 stream reaches us as an ``APIStatusError`` whose status is 200; its body's
``error.type`` (``overloaded_error``, ``api_error``, ``rate_limit_error`` ...) decides the mapping then.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anthropic
import httpx2

from domain.errors import ProviderError, RateLimitError, ServiceError, ValidationError
from services.vendor_stream import generic_failure, retry_after_seconds, safe_reason

__all__ = ["map_anthropic_error", "safe_reason"]

_TIMEOUTS = (anthropic.APITimeoutError, httpx2.TimeoutException)
_UNREACHABLE = (anthropic.APIConnectionError, httpx2.TransportError)
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
        return _by_status(provider, exc, status, type_, message, mid_stream=mid_stream)
    return generic_failure(provider, exc, timeouts=_TIMEOUTS, unreachable=_UNREACHABLE)


def _by_status(
    provider: str,
    exc: anthropic.APIStatusError,
    status: int,
    type_: str | None,
    message: object,
    *,
    mid_stream: bool,
) -> ServiceError:
    context: dict[str, Any] = {"provider": provider, "status": status, "vendor_code": type_}
    if status in (401, 403):
        return ProviderError(
            provider, f"{provider} rejected our credentials (HTTP {status})", original_error=exc, context=context
        )
    if status == 429:
        retry_after = None if mid_stream else retry_after_seconds(exc.response.headers)
        return RateLimitError(f"{provider} rate limit reached", retry_after=retry_after, context=context)
    if status == 408 or status >= 500 or type_ in _RETRYABLE_TYPES:
        what = "reported an error mid-stream" if mid_stream else f"is unavailable (HTTP {status})"
        return ProviderError(provider, f"{provider} {what}", original_error=exc, retryable=True, context=context)
    if status in (400, 413, 422):
        reason = safe_reason(message)
        field = "messages" if "too long" in reason or "context" in reason else "request"
        return ValidationError(field, reason, context=context)
    return ProviderError(provider, f"{provider} refused the call (HTTP {status})", original_error=exc, context=context)
