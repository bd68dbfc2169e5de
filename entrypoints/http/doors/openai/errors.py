"""HTTP boundary (OpenAI door): domain errors rendered as OpenAI's ``{"error": {message, type, param, code}}``.

The status of each error comes from the one error table (``entrypoints.http.errors``), so the SDK raises the exception
class that status maps to (400 ``BadRequestError``, 401 ``AuthenticationError``, 404 ``NotFoundError``, 429
``RateLimitError`` with ``Retry-After``, 5xx ``InternalServerError`` ...); only the body differs from the envelope,
and two statuses: OpenAI answers every invalid request with 400 (never 422 or 415: a file that is not audio is a
400), so the table's 422 and 415 are a 400 here, and clients catching ``BadRequestError`` catch them. The handlers
are scoped to the door's blueprint, so the native routes keep theirs. An error that ends a stream becomes the same
body on a ``data:`` line, which the SDK raises as ``APIError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec
import structlog
from quart import Blueprint, Response, current_app, g
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from domain.errors import (
    CapabilityError,
    MalformedRequestError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceError,
    ValidationError,
)
from entrypoints.http.doors.openai.wire import OpenAIError, OpenAIErrorBody
from entrypoints.http.errors import ERROR_TABLE, error_headers, status_for

__all__ = ["error_body", "install_error_handlers", "openai_error", "stream_error", "type_for"]

_log = structlog.get_logger("switchyard.http")
_PATH_START: Final = re.compile(r"^\$\.?")
# Stream ``error`` events carry the error's code, not its class: the table's classes say which status a code has.
_STATUS_BY_CODE: Final = {cls.code: mapping.status for cls, mapping in ERROR_TABLE.items()}


def type_for(status: int) -> str:
    """OpenAI's error ``type`` for an HTTP status."""
    if status >= 500:
        return "server_error"
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 429:
        return "rate_limit_error"
    return "invalid_request_error"


def _param_of(error: ServiceError) -> str | None:
    """The request field at fault, in the request's own spelling (``messages[0].role``), when the error names one."""
    if isinstance(error, MalformedRequestError):
        param = error.context.get("param")
        return param if isinstance(param, str) else None
    if isinstance(error, ValidationError):
        return _PATH_START.sub("", error.field) or None
    if isinstance(error, NotFoundError | CapabilityError) and "model" in error.context:
        return "model"
    field = error.context.get("field")  # e.g. the upload's ``file`` of a 415 or 413
    return field if isinstance(field, str) else None


def openai_error(error: ServiceError, status: int) -> OpenAIError:
    """The error object for ``error`` answered with ``status``."""
    code = "model_not_found" if isinstance(error, NotFoundError) and "model" in error.context else error.code
    return OpenAIError(message=error.message, type=type_for(status), param=_param_of(error), code=code)


def error_body(error: OpenAIError) -> bytes:
    """The JSON of ``{"error": error}``."""
    return msgspec.json.encode(OpenAIErrorBody(error))


def stream_error(payload: Mapping[str, Any]) -> OpenAIError:
    """The error object for a stream's terminal ``error`` event (``{code, message, retryable}``)."""
    code = str(payload.get("code") or "internal_error")
    message = str(payload.get("message") or "the stream failed")
    return OpenAIError(message=message, type=type_for(_STATUS_BY_CODE.get(code, 500)), code=code)


def _response(error: OpenAIError, status: int, headers: Mapping[str, str] | None = None) -> Response:
    return Response(error_body(error), status=status, headers=dict(headers or {}), content_type="application/json")


def door_status(status: int) -> int:
    """The table's status as OpenAI would send it: 422 (a value the rules refuse) and 415 (a body or file of the
    wrong type) are OpenAI's 400."""
    return 400 if status in (415, 422) else status


def _service_error_response(error: ServiceError) -> Response:
    status = door_status(status_for(error))
    log = _log.warning if status < 500 else _log.error
    log("request_failed", error=error.code, status=status, message=error.message)
    return _response(openai_error(error, status), status, error_headers(error, status))


def install_error_handlers(blueprint: Blueprint) -> None:
    """Answer every error of ``blueprint``'s routes (its own and the auth hook's) in OpenAI's shape."""

    @blueprint.errorhandler(ServiceError)
    async def _service_error(error: ServiceError) -> Response:
        return _service_error_response(error)

    @blueprint.errorhandler(RequestEntityTooLarge)
    async def _too_large(_error: RequestEntityTooLarge) -> Response:
        return _service_error_response(PayloadTooLargeError(int(current_app.config.get("MAX_CONTENT_LENGTH") or 0)))

    @blueprint.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = error.name.lower().replace(" ", "_")
        return _response(OpenAIError(message=error.description or error.name, type=type_for(status), code=code), status)

    @blueprint.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        request_id = getattr(g, "request_id", None)
        _log.error("request_crashed", request_id=request_id, exc_info=error)
        message = f"internal error; quote the request id {request_id} when reporting it"
        return _response(OpenAIError(message=message, type="server_error", code="internal_error"), 500)
