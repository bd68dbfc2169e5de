"""Driven adapter (OpenAI): translate OpenAI SDK and transport failures into domain errors.

Nothing of the vendor's body passes except its ``error.message`` for a 4xx request problem, scrubbed of anything
that looks like a key and capped in length; 401/403 bodies (which may quote the key) are dropped whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx2
import openai

from domain.errors import ProviderError, RateLimitError, ServiceError, ValidationError
from services.vendor_stream import generic_failure, retry_after_seconds, safe_reason

__all__ = ["map_openai_error", "safe_reason", "stream_error"]

_RETRYABLE_CODES = frozenset(("server_error", "internal_error", "overloaded", "service_unavailable", "timeout"))
_TIMEOUTS = (openai.APITimeoutError, httpx2.TimeoutException)
_UNREACHABLE = (openai.APIConnectionError, httpx2.TransportError)


def _error_fields(body: object) -> tuple[object, object, object]:
    """(message, type, code) from an OpenAI error body (``{"error": {...}}`` or the inner object)."""
    if isinstance(body, Mapping):
        inner: Any = body.get("error", body)
        if isinstance(inner, Mapping):
            return inner.get("message"), inner.get("type"), inner.get("code")
    return None, None, None


def stream_error(
    provider: str, code: object, message: object, *, original: BaseException | None = None
) -> ServiceError:
    """An error reported inside a 200 stream (Chat ``{"error"}`` chunk, Responses ``error``/``response.failed``)."""
    if code in ("rate_limit_exceeded", "rate_limit_error"):
        return RateLimitError(f"{provider} rate limit reached", context={"provider": provider})
    if code in ("context_length_exceeded", "invalid_prompt", "invalid_request_error"):
        return ValidationError("messages", safe_reason(message), context={"provider": provider})
    retryable = code is None or code in _RETRYABLE_CODES
    return ProviderError(
        provider,
        f"{provider} reported an error mid-stream: {safe_reason(message, 'unknown error')}",
        original_error=original,
        retryable=retryable,
        context={"vendor_code": code if isinstance(code, str) else None},
    )


def map_openai_error(provider: str, exc: BaseException) -> ServiceError:
    """The domain error for an exception raised by the OpenAI SDK (or its transport) during one call."""
    if isinstance(exc, openai.APIStatusError):
        return _status_error(provider, exc)
    # An ``{"error": ...}`` object inside the stream. ``APIConnectionError`` (and its ``APITimeoutError``) is an
    # ``APIError`` too, but a transport failure: ``generic_failure`` maps it.
    if isinstance(exc, openai.APIError) and not isinstance(exc, openai.APIConnectionError):
        message, type_, code = _error_fields(exc.body)
        return stream_error(provider, code or type_, message or exc.message, original=exc)
    return generic_failure(provider, exc, timeouts=_TIMEOUTS, unreachable=_UNREACHABLE)


def _status_error(provider: str, exc: openai.APIStatusError) -> ServiceError:
    status = exc.status_code
    message, _type, code = _error_fields(exc.body)
    context = {"provider": provider, "status": status}
    if status in (401, 403):
        return ProviderError(
            provider, f"{provider} rejected our credentials (HTTP {status})", original_error=exc, context=context
        )
    if status == 429:
        retry_after = retry_after_seconds(exc.response.headers)
        return RateLimitError(f"{provider} rate limit reached", retry_after=retry_after, context=context)
    if status == 408 or status >= 500:
        return ProviderError(
            provider, f"{provider} is unavailable (HTTP {status})", original_error=exc, retryable=True, context=context
        )
    if status in (400, 413, 422):
        field = "messages" if code == "context_length_exceeded" else "request"
        vendor_code = code if isinstance(code, str) else None
        return ValidationError(field, safe_reason(message), context={**context, "vendor_code": vendor_code})
    return ProviderError(provider, f"{provider} refused the call (HTTP {status})", original_error=exc, context=context)
