"""Domain: the typed error hierarchy.

Every error the core raises on purpose is a ``ServiceError`` with a stable machine ``code``, a human ``message`` and a
``context`` dict of safe metadata (never secrets, never raw vendor bodies). The HTTP entrypoint's single error table
maps these classes to status codes, WebSocket close codes and stream ``error`` events; nothing here knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "CapabilityError",
    "ClientTooSlowError",
    "CompletionOwnershipError",
    "ConfigurationError",
    "ConflictError",
    "ContentPolicyError",
    "DatabaseError",
    "FieldError",
    "MalformedRequestError",
    "MediaTooLargeError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ProviderError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "RateLimitError",
    "RequestValidationError",
    "ServiceError",
    "ServiceUnavailableError",
    "StreamingError",
    "UnsupportedMediaTypeError",
    "ValidationError",
]


class ServiceError(Exception):
    """Base of every deliberate error: a stable ``code``, a safe ``message`` and a ``context`` dict."""

    code: str = "service_error"
    retryable: bool = False

    def __init__(self, message: str, *, context: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = dict(context or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, context={self.context!r})"


class ValidationError(ServiceError):
    """One input field is invalid; ``field`` names it (a dotted or JSON path)."""

    code = "validation_error"

    def __init__(self, field: str, message: str, *, context: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{field}: {message}", context={"field": field, **(context or {})})
        self.field = field
        self.reason = message


class ContentPolicyError(ValidationError):
    """The vendor refused the request under its content policy; ``reason`` is the vendor's own (scrubbed) words."""

    code = "content_policy"

    def __init__(self, provider: str, reason: str, *, field: str = "prompt") -> None:
        super().__init__(field, reason, context={"provider": provider})
        self.provider = provider


class FieldError:
    """One entry of a ``RequestValidationError``: where (``loc``) and why (``msg``)."""

    __slots__ = ("loc", "msg")

    def __init__(self, loc: str, msg: str) -> None:
        self.loc = loc
        self.msg = msg

    def as_dict(self) -> dict[str, str]:
        return {"loc": self.loc, "msg": self.msg}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldError) and (self.loc, self.msg) == (other.loc, other.msg)

    def __hash__(self) -> int:
        return hash((self.loc, self.msg))

    def __repr__(self) -> str:
        return f"FieldError({self.loc!r}, {self.msg!r})"


class RequestValidationError(ValidationError):
    """A request body or query failed validation; ``errors`` lists every field error, not just the first."""

    code = "request_validation_error"

    def __init__(self, errors: Sequence[FieldError]) -> None:
        first = errors[0] if errors else FieldError("$", "invalid request")
        super().__init__(first.loc, first.msg, context={"errors": [e.as_dict() for e in errors]})
        self.message = f"request validation failed with {len(errors)} error(s); first: {first.loc}: {first.msg}"
        self.errors = list(errors)


class MalformedRequestError(ServiceError):
    """The request could not be parsed at all (not JSON, bad framing)."""

    code = "malformed_request"


class MediaTooLargeError(ServiceError):
    """Generated media are larger than the media store keeps (``media.max_bytes``): no fault of the request, so not
    a 413; the server could not store what the vendor made."""

    code = "media_too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the generated media ({size} bytes) exceed the media store's limit of {limit} bytes (media.max_bytes)",
            context={"size_bytes": size, "limit_bytes": limit},
        )


class UnsupportedMediaTypeError(ServiceError):
    """The request body has a content type this route does not accept."""

    code = "unsupported_media_type"


class PayloadTooLargeError(ServiceError):
    """The request body is larger than ``limits.max_body_bytes``."""

    code = "payload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body exceeds the limit of {limit} bytes", context={"limit_bytes": limit})
        self.limit = limit


class ConfigurationError(ServiceError):
    """A setting is missing or invalid; ``key`` names it as the user would set it."""

    code = "configuration_error"

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}", context={"key": key})
        self.key = key


class AuthenticationError(ServiceError):
    """The caller is not authenticated: token missing, malformed, expired or badly signed."""

    code = "authentication_error"


class AuthorizationError(ServiceError):
    """The caller is authenticated but lacks a required scope or role."""

    code = "authorization_error"


class NotFoundError(ServiceError):
    """The resource does not exist, or belongs to another customer (never revealed as 403)."""

    code = "not_found"


class ConflictError(ServiceError):
    """The request conflicts with the resource's current state."""

    code = "conflict"


class CapabilityError(ServiceError):
    """The model exists but lacks the capability the request needs."""

    code = "capability_error"

    def __init__(self, model: str, capability: str, message: str | None = None) -> None:
        super().__init__(
            message or f"model {model!r} does not support {capability!r}",
            context={"model": model, "capability": capability},
        )
        self.model = model
        self.capability = capability


class RateLimitError(ServiceError):
    """Too many requests (ours or a vendor's); ``retry_after`` seconds, when known, becomes ``Retry-After``."""

    code = "rate_limited"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, context: Mapping[str, Any] | None = None):
        super().__init__(message, context={**(context or {}), "retry_after": retry_after})
        self.retry_after = retry_after


class ProviderError(ServiceError):
    """A vendor call failed; ``provider`` names the vendor, ``original_error`` the exception class (not its body)."""

    code = "provider_error"

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        original_error: BaseException | None = None,
        retryable: bool = False,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        original = type(original_error).__name__ if original_error is not None else None
        super().__init__(
            message,
            context={"provider": provider, "original_error": original, "retryable": retryable, **(context or {})},
        )
        self.provider = provider
        self.original_error = original_error
        self.retryable = retryable


class ProviderTimeoutError(ProviderError):
    """A vendor call did not answer within its deadline."""

    code = "provider_timeout"

    def __init__(self, provider: str, message: str = "the provider did not answer in time", **kwargs: Any) -> None:
        kwargs.setdefault("retryable", True)
        super().__init__(provider, message, **kwargs)


class StreamingError(ServiceError):
    """A stream could not be produced or delivered; ``stage`` says where (produce, deliver, resume ...)."""

    code = "streaming_error"

    def __init__(self, stage: str, message: str, *, context: Mapping[str, Any] | None = None) -> None:
        super().__init__(message, context={"stage": stage, **(context or {})})
        self.stage = stage


class CompletionOwnershipError(StreamingError):
    """A completion was signalled with a wrong, stale or foreign token; nothing was emitted."""

    code = "completion_ownership"

    def __init__(self, message: str = "completion token does not own this stream", **kwargs: Any) -> None:
        super().__init__("complete", message, **kwargs)


class ClientTooSlowError(StreamingError):
    """A socket's client did not read what it was sent in time (a send blocked past its timeout, or the messages
    waiting for it passed their bound): it is disconnected rather than buffered without limit."""

    code = "client_too_slow"

    def __init__(self, message: str, *, context: Mapping[str, Any] | None = None) -> None:
        super().__init__("deliver", message, context=context)


class DatabaseError(ServiceError):
    """A database operation failed; ``operation`` names it (insert_usage, migrate ...)."""

    code = "database_error"
    retryable = True

    def __init__(self, operation: str, message: str, *, context: Mapping[str, Any] | None = None) -> None:
        super().__init__(message, context={"operation": operation, **(context or {})})
        self.operation = operation


class ServiceUnavailableError(ServiceError):
    """A backing service the request needs is down (JWKS issuer, database, Redis)."""

    code = "service_unavailable"
    retryable = True


class ProviderUnavailableError(ServiceUnavailableError):
    """Every candidate model's circuit breaker is open: refused at once, without calling a vendor.

    ``retry_after`` (seconds) is when the first of them may be tried again; it becomes ``Retry-After``."""

    code = "provider_unavailable"

    def __init__(self, message: str, *, retry_after: float, models: Sequence[str]) -> None:
        super().__init__(message, context={"retry_after": retry_after, "models": list(models)})
        self.retry_after = retry_after
        self.models = list(models)
