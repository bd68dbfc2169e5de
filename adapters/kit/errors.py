"""Driven-adapter kit: vendor-neutral error mapping. The HTTP status ladder every vendor shares, what is left once a
vendor's own error reports are handled (timeouts, unreachable, malformed chunks), and client-safe vendor text.

A vendor's ``errors`` module reads its SDK's exception (status, body, headers) and hands the facts to
``status_error``; the decision of which domain error a status becomes is made here, once, for every modality.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from adapters.kit.stream import MALFORMED
from domain.errors import ProviderError, ProviderTimeoutError, RateLimitError, ServiceError, ValidationError

__all__ = ["KEYLIKE", "MAX_REASON", "generic_failure", "retry_after_seconds", "safe_reason", "status_error"]

#: Tokens that look like a credential: a known key prefix (OpenAI and compatibles, Groq, Perplexity, xAI, Anthropic,
#: Google) followed by 12+ key characters, or any 40+ character run of them.
KEYLIKE = re.compile(r"\b(?:sk|pk|rk|gsk|pplx|xai|ant|key|AIza)[-_A-Za-z0-9]{12,}|\b[A-Za-z0-9_\-]{40,}")
#: The longest vendor reason passed on to a client.
MAX_REASON = 300


def status_error(
    provider: str,
    status: int,
    original: BaseException,
    *,
    message: object = None,
    field: str | Callable[[str], str] = "request",
    vendor_code: object = None,
    retry_after: float | None = None,
    retryable: bool = False,
    mid_stream: bool = False,
) -> ServiceError:
    """The domain error for a vendor's HTTP ``status`` (or the status an error reported inside a stream stands for).

    - 401/403: our credentials were refused; not retryable, and the vendor's body (which may quote the key) is dropped.
    - 429: ``RateLimitError`` carrying ``retry_after`` (seconds, as the vendor said; the caller reads it).
    - 408, 5xx, or ``retryable`` (the vendor's error type says so): a retryable ``ProviderError``.
    - 400/413/422: ``ValidationError`` naming ``field`` (or ``field(reason)``) with the vendor's ``message`` made
      client-safe by ``safe_reason``: the only vendor text that reaches a client.
    - anything else: the vendor refused the call; not retryable.

    The error's context names the provider, the status and ``vendor_code`` (when a string).
    """
    context: dict[str, Any] = {
        "provider": provider,
        "status": status,
        "vendor_code": vendor_code if isinstance(vendor_code, str) else None,
    }
    if status in (401, 403):
        return ProviderError(
            provider, f"{provider} rejected our credentials (HTTP {status})", original_error=original, context=context
        )
    if status == 429:
        return RateLimitError(f"{provider} rate limit reached", retry_after=retry_after, context=context)
    if status == 408 or status >= 500 or retryable:
        what = "reported an error mid-stream" if mid_stream else f"is unavailable (HTTP {status})"
        return ProviderError(provider, f"{provider} {what}", original_error=original, retryable=True, context=context)
    if status in (400, 413, 422):
        reason = safe_reason(message)
        return ValidationError(field if isinstance(field, str) else field(reason), reason, context=context)
    return ProviderError(
        provider, f"{provider} refused the call (HTTP {status})", original_error=original, context=context
    )


def generic_failure(
    provider: str,
    exc: BaseException,
    *,
    timeouts: tuple[type[BaseException], ...],
    unreachable: tuple[type[BaseException], ...],
) -> ProviderError:
    """What every vendor's error mapping ends with, once its own error reports are handled: a timeout, a vendor
    that could not be reached (retryable), a malformed chunk (retryable), else a failed call (not retryable).
    ``timeouts`` is checked first because a transport's timeout is usually also one of its ``unreachable`` errors;
    a "timeout" caused by an ``unreachable`` error that is no timeout itself is what its cause says (the SDKs'
    aiohttp transport reports a refused or dropped connection as ``ConnectTimeout``)."""
    if isinstance(exc, timeouts) and not _caused_by_unreachable(exc, timeouts, unreachable):
        return ProviderTimeoutError(provider, original_error=exc)
    if isinstance(exc, unreachable):
        return ProviderError(provider, f"could not reach {provider}", original_error=exc, retryable=True)
    if isinstance(exc, MALFORMED):
        return ProviderError(provider, f"{provider} sent a malformed chunk", original_error=exc, retryable=True)
    return ProviderError(provider, f"{provider} call failed", original_error=exc, retryable=False)


def _caused_by_unreachable(
    exc: BaseException, timeouts: tuple[type[BaseException], ...], unreachable: tuple[type[BaseException], ...]
) -> bool:
    cause, seen = exc.__cause__, 0
    while cause is not None and seen < 8:  # bounded: a cause chain may loop
        if isinstance(cause, unreachable) and not isinstance(cause, (*timeouts, TimeoutError)):
            return True
        cause, seen = cause.__cause__, seen + 1
    return False


def safe_reason(message: object, fallback: str = "the provider rejected the request") -> str:
    """A vendor message fit for a client: key-like tokens masked, length capped."""
    if not isinstance(message, str) or not message.strip():
        return fallback
    cleaned = KEYLIKE.sub("[redacted]", message.strip())
    return cleaned if len(cleaned) <= MAX_REASON else cleaned[: MAX_REASON - 1] + "…"


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait: ``retry-after-ms`` (OpenAI, Anthropic) wins over ``retry-after`` in seconds; a value that is
    not a number (an HTTP date included) is ignored, a negative one is 0."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) / scale)
        except ValueError:
            continue
    return None
