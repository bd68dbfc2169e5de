"""Blueprint: ``/api/v1/admin/quotas``, customers' limits and budgets (``admin`` scope only).

``PUT /api/v1/admin/quotas/{customer_id}`` sets the customer's override: each field ``null`` inherits the
``quotas.*`` setting, ``-1`` lifts the limit, a number sets it. ``GET`` answers the defaults, the override, the
limits in force and the counters now (in flight, this minute, today, this month); ``DELETE`` removes the override.
"""

from __future__ import annotations

from typing import Final

from attrs import frozen
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response

from domain.quotas import LimitOverride
from entrypoints.http.auth import require_scopes
from entrypoints.http.envelope import api_ok
from entrypoints.http.openapi import documented
from entrypoints.http.routes.admin_keys import ADMIN_SCOPE
from entrypoints.http.serialization import json_response, read_body
from services.quota_admin import QuotaAdmin, QuotaReport

__all__ = ["blueprint"]

blueprint = Blueprint("admin_quotas", __name__)
_MAX_BODY: Final = 16 * 1024
_ERRORS: Final = (400, 401, 403, 415, 422, 503)


@frozen
class Removed:
    """Whether the customer had an override."""

    customer_id: str
    removed: bool


@blueprint.get("/api/v1/admin/quotas")
@inject
@documented(
    "Every customer's limit override (admin)", response=dict[str, LimitOverride], tags=["admin"], errors=_ERRORS
)
@require_scopes(ADMIN_SCOPE)
async def list_overrides(admin: QuotaAdmin = Provide["quota_admin"]) -> Response:
    return json_response(api_ok(dict(await admin.overrides())))


@blueprint.get("/api/v1/admin/quotas/<customer_id>")
@inject
@documented(
    "A customer's limits (defaults, override, in force) and counters now (admin)",
    response=QuotaReport,
    tags=["admin"],
    errors=_ERRORS,
)
@require_scopes(ADMIN_SCOPE)
async def show(customer_id: str, admin: QuotaAdmin = Provide["quota_admin"]) -> Response:
    return json_response(api_ok(await admin.report(customer_id)))


@blueprint.put("/api/v1/admin/quotas/<customer_id>")
@inject
@documented(
    "Set a customer's limits (admin): null inherits the default, -1 is unlimited",
    request=LimitOverride,
    response=QuotaReport,
    tags=["admin"],
    errors=_ERRORS,
)
@require_scopes(ADMIN_SCOPE)
async def put(customer_id: str, admin: QuotaAdmin = Provide["quota_admin"]) -> Response:
    override = await read_body(LimitOverride, max_bytes=_MAX_BODY)
    return json_response(api_ok(await admin.set(customer_id, override)))


@blueprint.delete("/api/v1/admin/quotas/<customer_id>")
@inject
@documented(
    "Remove a customer's override: back to the defaults (admin)", response=Removed, tags=["admin"], errors=_ERRORS
)
@require_scopes(ADMIN_SCOPE)
async def clear(customer_id: str, admin: QuotaAdmin = Provide["quota_admin"]) -> Response:
    return json_response(api_ok(Removed(customer_id, await admin.clear(customer_id))))
