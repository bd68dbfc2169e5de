"""Driven adapter (OpenAI): translate OpenAI SDK and transport failures into domain errors.

Nothing of the vendor's body passes except its ``error.message`` for a 4xx request problem, scrubbed of anything
that looks like a key and capped in length; 401/403 bodies (which may quote the key) are dropped whole. Which
domain error an HTTP status becomes is the adapter kit's one ladder (``adapters.kit.errors.status_error``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import httpx2
import openai

from adapters.kit.errors import generic_failure, retry_after_seconds, safe_reason, status_error
from domain.errors import ProviderError, RateLimitError, ServiceError, ValidationError

__all__ = ["TRANSPORT_ERRORS", "map_openai_error", "safe_reason", "stream_error"]

_RETRYABLE_CODES = frozenset(("server_error", "internal_error", "overloaded", "service_unavailable", "timeout"))
_TIMEOUTS = (openai.APITimeoutError, httpx2.TimeoutException)
_UNREACHABLE = (openai.APIConnectionError, httpx2.TransportError, aiohttp.ClientConnectionError)
#: What the client's transport may raise past the SDK (httpx2's, or aiohttp's under the SDK's aiohttp transport,
#: which converts most of its errors to httpx2's and lets the rest through).
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx2.HTTPError, aiohttp.ClientError)


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
    message, _type, code = _error_fields(exc.body)
    status = exc.status_code
    return status_error(
        provider,
        status,
        exc,
        message=message,
        field="messages" if code == "context_length_exceeded" else "request",
        vendor_code=code,
        retry_after=retry_after_seconds(exc.response.headers) if status == 429 else None,
    )
