"""Blueprint: ``GET /api/v1/usage``, the caller's own usage totals (tokens, cost, requests, errors)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Final

from attrs import field, frozen
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response

from domain.errors import FieldError, RequestValidationError
from entrypoints.http.auth import current_auth
from entrypoints.http.envelope import api_ok
from entrypoints.http.openapi import documented
from entrypoints.http.serialization import WIRE_NAME, json_response, structure_query
from ports.usage import GroupBy
from services.usage import UsageReport, UsageService

__all__ = ["UsageQuery", "blueprint", "parse_instant"]

blueprint = Blueprint("usage", __name__)
_DATE_HINT: Final = "expected an ISO 8601 date or date-time, e.g. 2026-11-01 or 2026-11-01T12:00:00Z"


@frozen
class UsageQuery:
    """``?from=&to=&group_by=``: ISO 8601 dates or date-times (UTC when no offset; a date means its midnight)."""

    from_: str | None = field(default=None, metadata={WIRE_NAME: "from"})  # ``from`` is a Python keyword
    to: str | None = None
    group_by: GroupBy = "model"


def parse_instant(value: str | None, field: str) -> datetime | None:
    """An aware UTC datetime for a query value; ``RequestValidationError`` naming ``field`` when unreadable."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise RequestValidationError([FieldError(f"$.{field}", _DATE_HINT)]) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@blueprint.get("/api/v1/usage")
@inject
@documented(
    "Your usage totals in [from, to), grouped by model, provider or UTC day",
    response=UsageReport,
    query=UsageQuery,
    tags=["usage"],
    errors=(401, 422, 503),
)
async def usage(service: UsageService = Provide["usage"]) -> Response:
    query = structure_query(UsageQuery)
    report = await service.report(
        current_auth().customer_id,
        start=parse_instant(query.from_, "from"),
        end=parse_instant(query.to, "to"),
        group_by=query.group_by,
    )
    return json_response(api_ok(report))
