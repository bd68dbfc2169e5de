"""The error table: every domain error maps to a status and a WebSocket close code."""

from __future__ import annotations

import inspect

import pytest

import domain.errors as errors_module
from domain.errors import (
    AuthenticationError,
    CapabilityError,
    CompletionOwnershipError,
    NotFoundError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    RequestValidationError,
    ServiceError,
    ValidationError,
)
from entrypoints.http.errors import ERROR_TABLE, error_payload, status_for, ws_close_code_for


def _all_service_errors() -> list[type[ServiceError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors_module, inspect.isclass)
        if issubclass(cls, ServiceError) and cls.__module__ == errors_module.__name__
    ]


@pytest.mark.parametrize("cls", _all_service_errors(), ids=lambda c: c.__name__)
def test_every_service_error_class_has_its_own_table_entry(cls: type[ServiceError]) -> None:
    """Each ServiceError subclass is listed explicitly, so a new class cannot silently fall back to 500."""
    assert cls in ERROR_TABLE
    assert 400 <= ERROR_TABLE[cls].status <= 599


def test_statuses_match_the_documented_mapping() -> None:
    """The statuses the API promises."""
    assert status_for(ValidationError("model", "required")) == 422
    assert status_for(AuthenticationError("no")) == 401
    assert status_for(NotFoundError("gone")) == 404
    assert status_for(CapabilityError("m", "vision")) == 422
    assert status_for(RateLimitError("slow down", retry_after=3)) == 429
    assert status_for(ProviderError("openai", "bad gateway")) == 502
    assert status_for(ProviderTimeoutError("openai")) == 504
    assert status_for(CompletionOwnershipError()) == 409
    assert status_for(RuntimeError("boom")) == 500


def test_lookup_walks_the_class_hierarchy() -> None:
    """An unlisted subclass takes its nearest listed ancestor's entry."""

    class VendorQuotaError(RateLimitError):
        pass

    assert status_for(VendorQuotaError("quota")) == 429
    assert ws_close_code_for(VendorQuotaError("quota")) == 4429


def test_error_payload_is_safe_for_unexpected_errors() -> None:
    """Unexpected exceptions never leak their message into a stream or socket."""
    payload = error_payload(RuntimeError("password=hunter2"))
    assert payload == {"code": "internal_error", "message": "internal error", "retryable": False, "status": 500}
    assert error_payload(ProviderTimeoutError("anthropic"))["retryable"] is True


def test_request_validation_error_keeps_every_field_error() -> None:
    """All field errors travel, not just the first."""
    from domain.errors import FieldError

    err = RequestValidationError([FieldError("$.model", "required"), FieldError("$.temperature", "too hot")])
    assert [e.loc for e in err.errors] == ["$.model", "$.temperature"]
    assert err.context["errors"][1] == {"loc": "$.temperature", "msg": "too hot"}
