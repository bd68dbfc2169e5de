"""Driven adapter (Gemini): translate google-genai and transport failures into domain errors.

google-genai raises ``ClientError``/``ServerError`` with the HTTP code (and does so for an ``{"error": ...}`` chunk
inside a stream too), leaves httpx2 timeouts unwrapped, and raises ``UnknownApiResponseError`` (a ``ValueError``)
for a chunk that is not JSON. A 429 says when to retry in a ``google.rpc.RetryInfo`` detail, not (only) a header.
The code goes through the adapter kit's one status ladder (``adapters.kit.errors.status_error``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx2
from google.genai import errors as genai_errors

from adapters.kit.errors import generic_failure, retry_after_seconds, safe_reason, status_error
from domain.errors import ServiceError

__all__ = ["map_gemini_error", "retry_info_delay", "safe_reason"]

_TIMEOUTS = (httpx2.TimeoutException, TimeoutError)
_UNREACHABLE = (httpx2.TransportError,)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def retry_info_delay(body: object) -> float | None:
    """The seconds a Google error body (``{"error": {...}}`` or its inside) asks to wait in a ``google.rpc.RetryInfo``
    detail; ``None`` when it names none."""
    inner: Any = body.get("error", body) if isinstance(body, Mapping) else None
    for detail in (inner or {}).get("details", []) if isinstance(inner, Mapping) else []:
        if isinstance(detail, Mapping) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _retry_after(exc: genai_errors.APIError) -> float | None:
    delay = retry_info_delay(exc.details)
    if delay is not None:
        return delay
    headers = getattr(exc.response, "headers", None)
    return retry_after_seconds(headers) if headers is not None else None


def map_gemini_error(provider: str, exc: BaseException) -> ServiceError:
    """The domain error for an exception raised by google-genai (or its transport) during one call."""
    if isinstance(exc, genai_errors.APIError):
        return _api_error(provider, exc)
    return generic_failure(provider, exc, timeouts=_TIMEOUTS, unreachable=_UNREACHABLE)


def _api_error(provider: str, exc: genai_errors.APIError) -> ServiceError:
    code = exc.code if isinstance(exc.code, int) else 500
    return status_error(
        provider,
        code,
        exc,
        message=exc.message,
        field=_field,
        vendor_code=exc.status,
        retry_after=_retry_after(exc) if code == 429 else None,
    )


def _field(reason: str) -> str:
    """Gemini says a prompt is over the context window only in its message (tokens, "too long", context)."""
    return "messages" if "too long" in reason or "context" in reason or "token" in reason else "request"
