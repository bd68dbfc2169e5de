"""HTTP boundary: the one error table.

Maps each ``ServiceError`` class to an HTTP status and a WebSocket close code by walking the class hierarchy
(most specific first), renders the envelope, and turns anything unexpected into a 500 envelope carrying only the
request id. Stream ``error`` events reuse ``error_payload`` so every channel speaks the same codes.
"""

from __future__ import annotations

import math
from typing import Any, Final

import structlog
from attrs import frozen
from quart import Quart, Response, g
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from domain.errors import (
    AuthenticationError,
    AuthorizationError,
    CapabilityError,
    ClientTooSlowError,
    CompletionOwnershipError,
    ConfigurationError,
    ConflictError,
    ContentPolicyError,
    DatabaseError,
    MalformedRequestError,
    MediaTooLargeError,
    NotFoundError,
    PayloadTooLargeError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    RequestValidationError,
    ServiceError,
    ServiceUnavailableError,
    StreamingError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from domain.quotas import QuotaExceededError, RateStatus
from entrypoints.http.envelope import ApiResponse, ErrorBody, current_meta
from entrypoints.http.serialization import json_response

__all__ = [
    "ERROR_TABLE",
    "ErrorMapping",
    "api_error",
    "error_headers",
    "error_payload",
    "error_response",
    "mapping_for",
    "quota_headers",
    "register_error_handlers",
    "status_for",
    "ws_close_code_for",
]

_log = structlog.get_logger("switchyard.http")


@frozen
class ErrorMapping:
    """How one error class surfaces: HTTP status and WebSocket close code (4000 + status for client errors)."""

    status: int
    ws_close: int


ERROR_TABLE: Final[dict[type[ServiceError], ErrorMapping]] = {
    ServiceError: ErrorMapping(500, 1011),
    MalformedRequestError: ErrorMapping(400, 4400),
    ValidationError: ErrorMapping(422, 4422),
    RequestValidationError: ErrorMapping(422, 4422),
    ContentPolicyError: ErrorMapping(422, 4422),
    AuthenticationError: ErrorMapping(401, 4401),
    AuthorizationError: ErrorMapping(403, 4403),
    NotFoundError: ErrorMapping(404, 4404),
    ConflictError: ErrorMapping(409, 4409),
    CompletionOwnershipError: ErrorMapping(409, 4409),
    ClientTooSlowError: ErrorMapping(408, 4408),  # a socket's client stopped reading: disconnected
    PayloadTooLargeError: ErrorMapping(413, 1009),
    MediaTooLargeError: ErrorMapping(507, 1011),
    UnsupportedMediaTypeError: ErrorMapping(415, 4415),
    CapabilityError: ErrorMapping(422, 4422),
    RateLimitError: ErrorMapping(429, 4429),
    ConfigurationError: ErrorMapping(500, 1011),
    StreamingError: ErrorMapping(500, 1011),
    ProviderError: ErrorMapping(502, 4502),
    ServiceUnavailableError: ErrorMapping(503, 1013),
    ProviderUnavailableError: ErrorMapping(503, 1013),
    DatabaseError: ErrorMapping(503, 1013),
    ProviderTimeoutError: ErrorMapping(504, 4504),
}
_UNEXPECTED: Final = ErrorMapping(500, 1011)


def mapping_for(error: BaseException) -> ErrorMapping:
    """The table entry of the most specific class in ``error``'s MRO; unexpected errors map to 500/1011."""
    for cls in type(error).__mro__:
        found = ERROR_TABLE.get(cls)
        if found is not None:
            return found
    return _UNEXPECTED


def status_for(error: BaseException) -> int:
    """HTTP status for ``error``."""
    return mapping_for(error).status


def ws_close_code_for(error: BaseException) -> int:
    """WebSocket close code for ``error``."""
    return mapping_for(error).ws_close


def error_payload(error: BaseException) -> dict[str, Any]:
    """The JSON body of a stream ``error`` event or WebSocket error message: code, message, retryable, status."""
    if isinstance(error, ServiceError):
        return {
            "code": error.code,
            "message": error.message,
            "retryable": bool(getattr(error, "retryable", False)),
            "status": status_for(error),
        }
    return {"code": "internal_error", "message": "internal error", "retryable": False, "status": 500}


def api_error(error: ServiceError, *, status: int | None = None) -> ApiResponse[ErrorBody]:
    """An error envelope for ``error``; its status comes from the table unless given."""
    code = status if status is not None else status_for(error)
    context = {k: v for k, v in error.context.items() if k != "errors"}
    errors = [e.as_dict() for e in error.errors] if isinstance(error, RequestValidationError) else None
    if errors is None and "field" in error.context and code == 422:
        errors = [{"loc": str(error.context["field"]), "msg": getattr(error, "reason", error.message)}]
    body = ErrorBody(error=error.code, type=type(error).__name__, context=context, errors=errors)
    return ApiResponse(code=code, success=False, message=error.message, data=body, meta=current_meta())


def error_headers(error: ServiceError, status: int) -> dict[str, str]:
    """The headers an error response carries whatever its body: ``WWW-Authenticate`` on a 401, ``Retry-After`` on a
    rate limit whose wait is known and on every model's circuit being open."""
    headers: dict[str, str] = {}
    if status == 401:
        description = error.message.replace('"', "'")
        headers["WWW-Authenticate"] = f'Bearer error="invalid_token", error_description="{description}"'
    if isinstance(error, RateLimitError | ProviderUnavailableError) and error.retry_after is not None:
        headers["Retry-After"] = str(max(0, math.ceil(error.retry_after)))
    headers.update(quota_headers(error))
    return headers


def quota_headers(error: ServiceError) -> dict[str, str]:
    """``X-RateLimit-Limit/Remaining/Reset`` (reset in seconds) of a customer limit or budget that refused a call; the
    context names which limit (``limit``), budgets count USD."""
    if not isinstance(error, QuotaExceededError):
        return {}
    context = error.context
    return {
        "X-RateLimit-Limit": _number(context["allowed"]),
        "X-RateLimit-Remaining": _number(context["remaining"]),
        "X-RateLimit-Reset": str(context["reset_s"]),
        "X-RateLimit-Resource": _resource(context["limit"], context.get("scope", "customer")),
    }


def rate_status_headers(status: RateStatus) -> dict[str, str]:
    """The same headers on a response whose calls were admitted: the limit closest to refusing, as it stands with
    them counted (``services/principal.report_rate_status``)."""
    return {
        "X-RateLimit-Limit": _number(status.allowed),
        "X-RateLimit-Remaining": _number(status.remaining),
        "X-RateLimit-Reset": str(status.reset_s),
        "X-RateLimit-Resource": _resource(status.limit, status.scope),
    }


def _resource(limit: str, scope: str) -> str:
    """Which limit the headers describe: ``requests_per_minute``; ``key.requests_per_minute`` for an API key's."""
    return f"key.{limit}" if scope == "key" else limit


def _number(value: float) -> str:
    """A count as an integer, an amount of USD to the 1e-8 it is counted in (never exponent notation)."""
    return str(value) if isinstance(value, int) else f"{value:.8f}".rstrip("0").rstrip(".")


def error_response(error: ServiceError) -> Response:
    """The envelope response for a domain error."""
    status = status_for(error)
    return json_response(api_error(error, status=status), status=status, headers=error_headers(error, status))


def _unexpected_response() -> Response:
    body = ApiResponse(
        code=500,
        success=False,
        message="internal error; quote the request id when reporting it",
        data=ErrorBody(error="internal_error", type="InternalError"),
        meta=current_meta(),
    )
    return json_response(body, status=500)


def register_error_handlers(app: Quart) -> None:
    """Install the table on ``app``: domain errors, Quart/werkzeug HTTP errors and anything unexpected."""

    @app.errorhandler(ServiceError)
    async def _service_error(error: ServiceError) -> Response:
        status = status_for(error)
        log = _log.warning if status < 500 else _log.error
        log("request_failed", error=error.code, status=status, message=error.message)
        return error_response(error)

    @app.errorhandler(RequestEntityTooLarge)
    async def _too_large(_error: RequestEntityTooLarge) -> Response:
        return error_response(PayloadTooLargeError(int(app.config.get("MAX_CONTENT_LENGTH") or 0)))

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        body = ApiResponse(
            code=status,
            success=False,
            message=error.description or error.name,
            data=ErrorBody(error=error.name.lower().replace(" ", "_"), type="HTTPException"),
            meta=current_meta(),
        )
        allowed = getattr(error, "valid_methods", None)
        headers = {"Allow": ", ".join(allowed)} if allowed else {}
        return json_response(body, status=status, headers=headers)

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        _log.error("request_crashed", request_id=getattr(g, "request_id", None), exc_info=error)
        return _unexpected_response()
