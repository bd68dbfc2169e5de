"""Driven adapter (ElevenLabs): translate elevenlabs SDK and transport failures into domain errors.

The SDK raises ``ApiError`` (and subclasses per status) carrying the status, the headers and the decoded body, and
``ParsingError`` for a 2xx body of the wrong shape; it rides on legacy ``httpx``, whose timeouts and transport
errors pass unwrapped (a stream cut mid-audio is an ``httpx.RemoteProtocolError``). ElevenLabs explains an error in
``{"detail": {"status": "<code>", "message": "..."}}``, or, for a body that failed its validation (422),
``{"detail": [{"loc": ["body", "<field>"], "msg": "..."}]}``. Which domain error a status becomes is the adapter
kit's one ladder (``adapters.kit.errors.status_error``); only the scrubbed ``message`` may reach a client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx
from elevenlabs.core.api_error import ApiError
from elevenlabs.core.parse_error import ParsingError

from adapters.kit.errors import generic_failure, retry_after_seconds, safe_reason, status_error
from domain.errors import ServiceError, ValidationError

__all__ = ["VENDOR_FAILURES", "map_elevenlabs_error"]

#: Every exception an ElevenLabs call may raise that ``map_elevenlabs_error`` translates.
VENDOR_FAILURES: Final[tuple[type[Exception], ...]] = (ApiError, ParsingError, httpx.HTTPError)
_TIMEOUTS: Final = (httpx.TimeoutException,)
_UNREACHABLE: Final = (httpx.TransportError,)
#: ``detail.status`` codes that are about one field of the request (the vendor's name for it).
_FIELD_CODES: Final[Mapping[str, str]] = {
    "voice_not_found": "voice_id",
    "voice_does_not_exist": "voice_id",
    "model_not_found": "model_id",
    "max_character_limit_exceeded": "text",
    "invalid_output_format": "output_format",
}
#: ``detail.status`` codes that mean "try again later" whatever the HTTP status.
_BUSY_CODES: Final = frozenset(("system_busy", "too_many_concurrent_requests", "service_unavailable"))


def _detail(body: object) -> tuple[str | None, object, str | None]:
    """(vendor code, message, vendor field) from an ElevenLabs error body."""
    detail: Any = body.get("detail", body) if isinstance(body, Mapping) else None
    if isinstance(detail, Mapping):
        code = detail.get("status") if isinstance(detail.get("status"), str) else None
        param = detail.get("param") if isinstance(detail.get("param"), str) else None
        return code, detail.get("message"), param or (_FIELD_CODES.get(code) if code else None)
    if isinstance(detail, list) and detail and isinstance(detail[0], Mapping):
        first = detail[0]
        location = first.get("loc")
        name = str(location[-1]) if isinstance(location, list) and location else None
        return None, first.get("msg"), name
    return None, detail if isinstance(detail, str) else None, None


def map_elevenlabs_error(
    provider: str, exc: BaseException, *, fields: Mapping[str, str] | None = None, default_field: str = "request"
) -> ServiceError:
    """The domain error for an exception raised by the elevenlabs SDK (or its transport) during one call.

    ``fields`` renames the vendor's field names (``voice_id``, ``text`` ...) to the request's; an error about a field
    names it (an unknown voice is a 422 on ``voice``, not a failed vendor)."""
    if isinstance(exc, ApiError):
        return _api_error(provider, exc, fields or {}, default_field)
    return generic_failure(provider, exc, timeouts=_TIMEOUTS, unreachable=_UNREACHABLE)


def _api_error(provider: str, exc: ApiError, fields: Mapping[str, str], default_field: str) -> ServiceError:
    status = exc.status_code if isinstance(exc.status_code, int) else 500
    code, message, vendor_field = _detail(exc.body)
    field = fields.get(vendor_field, vendor_field) if vendor_field else default_field
    if status == 404 and vendor_field is not None:
        # An unknown voice or model is the caller's mistake about that field, not a missing route.
        return ValidationError(field, safe_reason(message), context={"provider": provider, "vendor_code": code})
    return status_error(
        provider,
        status,
        exc,
        message=message,
        field=field,
        vendor_code=code,
        retry_after=retry_after_seconds(exc.headers or {}) if status == 429 else None,
        retryable=code in _BUSY_CODES,
    )
