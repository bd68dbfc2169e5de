"""Driven adapter (OpenAI): translate OpenAI SDK and transport failures into domain errors.

Nothing of the vendor's body passes except its ``error.message`` for a 4xx request problem, scrubbed of anything
that looks like a key and capped in length; 401/403 bodies (which may quote the key) are dropped whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx2
import openai

from domain.errors import ProviderError, ProviderTimeoutError, RateLimitError, ServiceError, ValidationError

__all__ = ["MALFORMED", "map_openai_error", "retry_after_from_headers", "safe_reason", "stream_error"]

_KEYLIKE = re.compile(r"\b(?:sk|pk|rk|gsk|pplx|xai|key|AIza)[-_A-Za-z0-9]{12,}|\b[A-Za-z0-9_\-]{40,}")
_MAX_REASON = 300
#: A chunk that is not JSON (``json.JSONDecodeError``) or not the shape the SDK's models expect.
MALFORMED: tuple[type[Exception], ...] = (ValueError, TypeError, AttributeError, LookupError)
_RETRYABLE_CODES = frozenset(("server_error", "internal_error", "overloaded", "service_unavailable", "timeout"))


def safe_reason(message: object, fallback: str = "the provider rejected the request") -> str:
    """A vendor message fit for a client: key-like tokens masked, length capped."""
    if not isinstance(message, str) or not message.strip():
        return fallback
    cleaned = _KEYLIKE.sub("[redacted]", message.strip())
    return cleaned if len(cleaned) <= _MAX_REASON else cleaned[: _MAX_REASON - 1] + "…"


def retry_after_from_headers(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait: ``retry-after-ms`` (OpenAI) wins over ``retry-after`` in seconds; HTTP dates are ignored."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) / scale)
        except ValueError:
            continue
    return None


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
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return ProviderTimeoutError(provider, original_error=exc)
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        return ProviderError(provider, f"could not reach {provider}", original_error=exc, retryable=True)
    if isinstance(exc, openai.APIStatusError):
        return _status_error(provider, exc)
    if isinstance(exc, openai.APIError):  # an ``{"error": ...}`` object inside the stream
        message, type_, code = _error_fields(exc.body)
        return stream_error(provider, code or type_, message or exc.message, original=exc)
    if isinstance(exc, MALFORMED):  # a chunk that is not JSON, or not the expected shape
        return ProviderError(provider, f"{provider} sent a malformed chunk", original_error=exc, retryable=True)
    return ProviderError(provider, f"{provider} call failed", original_error=exc, retryable=False)


def _status_error(provider: str, exc: openai.APIStatusError) -> ServiceError:
    status = exc.status_code
    message, _type, code = _error_fields(exc.body)
    context = {"provider": provider, "status": status}
    if status in (401, 403):
        return ProviderError(
            provider, f"{provider} rejected our credentials (HTTP {status})", original_error=exc, context=context
        )
    if status == 429:
        retry_after = retry_after_from_headers(exc.response.headers)
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
