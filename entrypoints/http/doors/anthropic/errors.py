"""HTTP boundary, Anthropic door: errors said the way Anthropic says them, ``{"type": "error", "error": {"type",
"message"}}``, from the one error table.

The table (``entrypoints.http.errors``) still decides what an error is; this module only moves its status onto the
set Anthropic answers with, so the SDK raises the class a client expects: 422 (a rule the types cannot express) and
415 are Anthropic's 400 ``invalid_request_error``, 503 (a backing service down) is its 529 ``overloaded_error``,
504 its ``timeout_error``. A 429 keeps ``retry-after``. Stream ``error`` events carry only a code, which is looked
up in the same table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

import structlog
from quart import Blueprint, Response, current_app, g, has_request_context
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from domain.errors import PayloadTooLargeError, RateLimitError, RequestValidationError, ServiceError
from domain.types import JsonValue
from entrypoints.http.doors.anthropic.wire import AnthropicError, AnthropicErrorDetail, dump
from entrypoints.http.errors import ERROR_TABLE, quota_headers, status_for
from entrypoints.http.serialization import json_response

__all__ = [
    "REQUEST_ID_HEADER",
    "current_request_id",
    "error_body",
    "install_error_handlers",
    "render_error",
    "stream_failure",
    "wire_status",
]

REQUEST_ID_HEADER: Final = "request-id"  # where Anthropic's SDK reads a response's request id
_WIRE: Final[dict[int, tuple[int, str]]] = {
    400: (400, "invalid_request_error"),
    401: (401, "authentication_error"),
    403: (403, "permission_error"),
    404: (404, "not_found_error"),
    413: (413, "request_too_large"),
    429: (429, "rate_limit_error"),
    500: (500, "api_error"),
    502: (502, "api_error"),
    503: (529, "overloaded_error"),
    504: (504, "timeout_error"),
}
_STATUS_BY_CODE: Final = {cls.code: mapping.status for cls, mapping in ERROR_TABLE.items()}
_log = structlog.get_logger("switchyard.http")


def wire_status(status: int) -> tuple[int, str]:
    """Anthropic's (status, error type) for a status of the error table."""
    found = _WIRE.get(status)
    if found is not None:
        return found
    return (500, "api_error") if status >= 500 else (400, "invalid_request_error")


def _message(error: ServiceError) -> str:
    if isinstance(error, RequestValidationError):  # every field, as Anthropic lists them: "max_tokens: Field required"
        return "; ".join(f"{e.loc.removeprefix('$.')}: {e.msg}" for e in error.errors)
    return error.message


def current_request_id() -> str | None:
    """The current request's id (``None`` outside a request: a streamed body is sent after the view returned)."""
    value = getattr(g, "request_id", None) if has_request_context() else None
    return str(value) if value else None


def error_body(error_type: str, message: str, request_id: str | None = None) -> dict[str, JsonValue]:
    """Anthropic's error body (also the data of a stream's ``event: error``), naming ``request_id`` or else the
    current request's."""
    error = AnthropicError(
        error=AnthropicErrorDetail(error_type, message), request_id=request_id or current_request_id()
    )
    body: dict[str, JsonValue] = dump(error)
    return body


def render_error(error: ServiceError) -> Response:
    """The HTTP answer for a domain error: the table's status in Anthropic's terms, and Anthropic's body."""
    status, error_type = wire_status(status_for(error))
    headers: dict[str, str] = {}
    request_id = current_request_id()
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    if isinstance(error, RateLimitError) and error.retry_after is not None:
        headers["retry-after"] = str(max(0, math.ceil(error.retry_after)))
    headers.update(quota_headers(error))  # a customer limit of ours (issue 18)
    log = _log.warning if status < 500 else _log.error
    log("request_failed", error=error.code, status=status, message=error.message, door="anthropic")
    return json_response(error_body(error_type, _message(error)), status=status, headers=headers)


def stream_failure(
    kind: str, payload: Mapping[str, JsonValue], request_id: str | None = None
) -> tuple[int, dict[str, JsonValue]]:
    """(Anthropic status, error body) for a stream that failed: its ``error`` event or a ``disconnect`` (code,
    message, retryable), a ``cancelled`` event (reason) or a ``gap``.

    A code outside the table (``stalled``, ``producer_lost`` ...) is ``overloaded_error`` when a retry may help, as is
    a stream cancelled by a shutting-down server; one its owner cancelled is not worth retrying."""
    if kind == "cancelled":
        reason = str(payload.get("reason") or "cancelled")
        status, error_type = (400, "invalid_request_error") if reason == "client" else wire_status(503)
        return status, error_body(error_type, f"the stream was cancelled ({reason})", request_id)
    if kind == "gap":
        return 500, error_body("api_error", "events of this stream expired before they were delivered", request_id)
    code = str(payload.get("code") or "")
    status, error_type = wire_status(_STATUS_BY_CODE.get(code, 503 if payload.get("retryable") else 500))
    return status, error_body(error_type, str(payload.get("message") or code or "the stream failed"), request_id)


def install_error_handlers(blueprint: Blueprint) -> None:
    """Answer every failure of ``blueprint``'s routes in Anthropic's shape (the app's handlers answer the rest)."""

    @blueprint.errorhandler(ServiceError)
    async def _service_error(error: ServiceError) -> Response:
        return render_error(error)

    @blueprint.errorhandler(RequestEntityTooLarge)
    async def _too_large(_error: RequestEntityTooLarge) -> Response:
        return render_error(PayloadTooLargeError(int(current_app.config.get("MAX_CONTENT_LENGTH") or 0)))

    @blueprint.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status, error_type = wire_status(error.code or 500)
        return json_response(error_body(error_type, error.description or error.name), status=status)

    @blueprint.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        _log.error("request_crashed", request_id=current_request_id(), exc_info=error, door="anthropic")
        body = error_body("api_error", "internal error; quote the request id when reporting it")
        return json_response(body, status=500)
