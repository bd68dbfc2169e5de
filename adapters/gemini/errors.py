"""Driven adapter (Gemini): translate google-genai and transport failures into domain errors.

google-genai raises ``ClientError``/``ServerError`` with the HTTP code (and does so for an ``{"error": ...}`` chunk
inside a stream too), leaves httpx2 timeouts unwrapped, and raises ``UnknownApiResponseError`` (a ``ValueError``)
for a chunk that is not JSON. A 429 says when to retry in a ``google.rpc.RetryInfo`` detail, not (only) a header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx2
from google.genai import errors as genai_errors

from domain.errors import ProviderError, ProviderTimeoutError, RateLimitError, ServiceError, ValidationError

__all__ = ["MALFORMED", "map_gemini_error", "safe_reason"]

_KEYLIKE = re.compile(r"\b(?:sk|pk|rk|key|AIza)[-_A-Za-z0-9]{12,}|\b[A-Za-z0-9_\-]{40,}")
_MAX_REASON = 300
#: A chunk that is not JSON (``json.JSONDecodeError``) or not the shape the SDK's models expect.
MALFORMED: tuple[type[Exception], ...] = (ValueError, TypeError, AttributeError, LookupError)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def safe_reason(message: object, fallback: str = "the provider rejected the request") -> str:
    """A vendor message fit for a client: key-like tokens masked, length capped."""
    if not isinstance(message, str) or not message.strip():
        return fallback
    cleaned = _KEYLIKE.sub("[redacted]", message.strip())
    return cleaned if len(cleaned) <= _MAX_REASON else cleaned[: _MAX_REASON - 1] + "…"


def _retry_after(exc: genai_errors.APIError) -> float | None:
    details: Any = exc.details
    inner = details.get("error", details) if isinstance(details, Mapping) else None
    for detail in (inner or {}).get("details", []) if isinstance(inner, Mapping) else []:
        if isinstance(detail, Mapping) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    headers = getattr(exc.response, "headers", None)
    raw = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def map_gemini_error(provider: str, exc: BaseException) -> ServiceError:
    """The domain error for an exception raised by google-genai (or its transport) during one call."""
    if isinstance(exc, httpx2.TimeoutException | TimeoutError):
        return ProviderTimeoutError(provider, original_error=exc)
    if isinstance(exc, httpx2.TransportError):
        return ProviderError(provider, f"could not reach {provider}", original_error=exc, retryable=True)
    if isinstance(exc, genai_errors.APIError):
        return _api_error(provider, exc)
    if isinstance(exc, MALFORMED):  # a chunk that is not JSON, or not the expected shape
        return ProviderError(provider, f"{provider} sent a malformed chunk", original_error=exc, retryable=True)
    return ProviderError(provider, f"{provider} call failed", original_error=exc)


def _api_error(provider: str, exc: genai_errors.APIError) -> ServiceError:
    code = exc.code if isinstance(exc.code, int) else 500
    context = {"provider": provider, "status": code, "vendor_code": exc.status}
    if code in (401, 403):
        return ProviderError(
            provider, f"{provider} rejected our credentials (HTTP {code})", original_error=exc, context=context
        )
    if code == 429:
        return RateLimitError(f"{provider} rate limit reached", retry_after=_retry_after(exc), context=context)
    if code == 408 or code >= 500:
        return ProviderError(
            provider, f"{provider} is unavailable (HTTP {code})", original_error=exc, retryable=True, context=context
        )
    if code in (400, 413, 422):
        reason = safe_reason(exc.message)
        field = "messages" if "too long" in reason or "context" in reason or "token" in reason else "request"
        return ValidationError(field, reason, context=context)
    return ProviderError(provider, f"{provider} refused the call (HTTP {code})", original_error=exc, context=context)
