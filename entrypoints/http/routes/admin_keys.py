"""Blueprint: ``/api/v1/admin/keys``, API keys issued, listed and revoked by an operator (``admin`` scope only).

The same service as ``switchyard keys``. ``POST`` answers the key itself once (201); listings never carry it.
A caller without the ``admin`` scope gets a 403 naming the missing scope, whatever it asks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from attrs import frozen
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response

from domain.api_keys import ApiKey
from domain.quotas import LIMIT_NAMES, Limits
from entrypoints.http.auth import require_scopes
from entrypoints.http.envelope import api_ok
from entrypoints.http.openapi import documented
from entrypoints.http.serialization import json_response, read_body, structure_query
from services.api_keys import ApiKeyService

__all__ = ["ADMIN_SCOPE", "KeyLimits", "KeyView", "NewKey", "blueprint"]

blueprint = Blueprint("admin_keys", __name__)
ADMIN_SCOPE: Final = "admin"
_MAX_BODY: Final = 64 * 1024
_ERRORS: Final = (400, 401, 403, 404, 409, 415, 422, 503)


@frozen
class KeyLimits:
    """A key's own limits, enforced with its customer's (``null``: no limit of the key's own); budgets in USD."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrent_streams: int | None = None
    daily_budget_usd: float | None = None
    monthly_budget_usd: float | None = None

    @classmethod
    def of(cls, limits: Limits) -> KeyLimits:
        return cls(**{name: getattr(limits, name) for name in LIMIT_NAMES})

    def domain(self) -> Limits:
        return Limits(**{name: getattr(self, name) for name in LIMIT_NAMES})


@frozen
class NewKey:
    """``POST`` body: whose key, what for, and what it may do (``models`` left out: every model; ``limits``: the
    key's own, on top of its customer's)."""

    customer_id: str
    name: str
    scopes: list[str] | None = None
    models: list[str] | None = None
    expires_in_s: float | None = None
    limits: KeyLimits | None = None


@frozen
class KeyView:
    """A key as listed: never the key itself, only its display prefix."""

    id: str
    prefix: str
    customer_id: str
    name: str
    scopes: list[str]
    models: list[str] | None
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None
    limits: KeyLimits

    @classmethod
    def of(cls, key: ApiKey) -> KeyView:
        return cls(
            id=key.id,
            prefix=key.prefix,
            customer_id=key.customer_id,
            name=key.name,
            scopes=sorted(key.scopes),
            models=None if key.models is None else sorted(key.models),
            created_at=key.created_at.isoformat(),
            expires_at=_iso(key.expires_at),
            last_used_at=_iso(key.last_used_at),
            revoked_at=_iso(key.revoked_at),
            limits=KeyLimits.of(key.limits),
        )


@frozen
class IssuedKeyView:
    """A key just issued: ``key`` is shown this once."""

    key: str
    details: KeyView


@frozen
class KeyQuery:
    """``?customer_id=``: only that customer's keys."""

    customer_id: str | None = None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@blueprint.post("/api/v1/admin/keys")
@inject
@documented(
    "Issue an API key for a customer (admin); the key is in this answer only",
    request=NewKey,
    response=IssuedKeyView,
    tags=["admin"],
    errors=_ERRORS,
    description=(
        "The key (`sy-...`) works wherever a bearer JWT does. `scopes` become the caller's scopes; `models` limits "
        "the models the key may use (`provider/*` allows a vendor's every model); `expires_in_s` bounds its life; "
        "`limits` (requests/tokens per minute, calls in flight, daily/monthly USD) are the key's own, enforced "
        "together with its customer's in one atomic step."
    ),
)
@require_scopes(ADMIN_SCOPE)
async def create_key(service: ApiKeyService = Provide["api_keys"]) -> Response:
    body = await read_body(NewKey, max_bytes=_MAX_BODY)
    issued = await service.create(
        body.customer_id,
        body.name,
        scopes=body.scopes or (),
        expires_in_s=body.expires_in_s,
        models=body.models,
        limits=None if body.limits is None else body.limits.domain(),
    )
    view = IssuedKeyView(issued.secret, KeyView.of(issued.key))
    return json_response(api_ok(view, code=201, message="created"), status=201)


@blueprint.get("/api/v1/admin/keys")
@inject
@documented(
    "List API keys (admin), newest first", response=list[KeyView], query=KeyQuery, tags=["admin"], errors=_ERRORS
)
@require_scopes(ADMIN_SCOPE)
async def list_keys(service: ApiKeyService = Provide["api_keys"]) -> Response:
    query = structure_query(KeyQuery)
    keys = await service.list(query.customer_id)
    return json_response(api_ok([KeyView.of(key) for key in keys]))


@blueprint.delete("/api/v1/admin/keys/<key>")
@inject
@documented(
    "Revoke an API key by its id or display prefix (admin); refused on every instance once this answers",
    response=KeyView,
    tags=["admin"],
    errors=_ERRORS,
)
@require_scopes(ADMIN_SCOPE)
async def revoke_key(key: str, service: ApiKeyService = Provide["api_keys"]) -> Response:
    return json_response(api_ok(KeyView.of(await service.revoke(key))))
