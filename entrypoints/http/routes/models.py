"""Blueprint: ``GET /api/v1/models``, the enabled catalog with capabilities, limits and prices (filterable); a caller
whose API key has a model allow-list sees only the models it may use."""

from __future__ import annotations

from attrs import frozen
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response

from domain.catalog import CAPABILITIES, ModelSpec
from domain.errors import FieldError, RequestValidationError
from entrypoints.http.envelope import Pagination, api_ok
from entrypoints.http.openapi import documented
from entrypoints.http.serialization import json_response, structure_query
from services.principal import visible_models
from services.registry import ProviderRegistry

__all__ = ["ModelInfo", "ModelList", "ModelsQuery", "blueprint", "model_info"]

blueprint = Blueprint("models", __name__)


@frozen
class ModelsQuery:
    """``?capability=``: only models that have it (text, vision, tools, structured_output, reasoning ...)."""

    capability: str | None = None


@frozen
class ModelInfo:
    """One servable model: its qualified id, what it can do, its limits and list prices (USD per million tokens)."""

    id: str
    provider: str
    model: str
    aliases: list[str]
    capabilities: list[str]
    context_window: int | None
    max_output_tokens: int | None
    input_price_per_mtok: float | None
    output_price_per_mtok: float | None
    unsupported_params: list[str]
    fallbacks: list[str]
    api: str | None = None


@frozen
class ModelList:
    """The enabled models, in catalog order."""

    models: list[ModelInfo]


def model_info(spec: ModelSpec) -> ModelInfo:
    """The public view of a catalog entry."""
    return ModelInfo(
        id=spec.qualified_id,
        provider=spec.provider,
        model=spec.id,
        aliases=list(spec.aliases),
        capabilities=sorted(spec.capabilities),
        context_window=spec.context_window,
        max_output_tokens=spec.max_output_tokens,
        input_price_per_mtok=spec.input_price_per_mtok,
        output_price_per_mtok=spec.output_price_per_mtok,
        unsupported_params=sorted(spec.unsupported_params),
        fallbacks=list(spec.fallbacks),
        api=spec.api,
    )


@blueprint.get("/api/v1/models")
@inject
@documented(
    "The models this server can serve (enabled vendors only) to this caller (an API key's allow-list applies), "
    "optionally with one capability",
    response=ModelList,
    query=ModelsQuery,
    tags=["models"],
    errors=(401, 422),
)
async def list_models(registry: ProviderRegistry = Provide["provider_registry"]) -> Response:
    query = structure_query(ModelsQuery)
    if query.capability is not None and query.capability not in CAPABILITIES:
        known = ", ".join(sorted(CAPABILITIES))
        raise RequestValidationError([FieldError("$.capability", f"unknown capability; known: {known}")])
    models = [model_info(spec) for spec in visible_models(registry.models(query.capability))]
    pagination = Pagination(total=len(models), limit=len(models))
    return json_response(api_ok(ModelList(models), pagination=pagination))
