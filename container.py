"""Composition root: the one ``DeclarativeContainer`` that assembles settings, adapters and services.

Sections: infrastructure (settings, logging, clients with a lifetime), adapters typed by the port they implement,
services. Environments differ by settings and by which providers tests override, never by ``if env ==`` in code.

Async resources (database engine, Redis client) make their dependants async too: outside ``@inject`` routes,
resolve those with ``await container.<name>()``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from dependency_injector import containers, providers
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.jose.minter import JoseTokenMinter
from adapters.jose.verifier import JoseTokenVerifier
from adapters.redis.client import RedisHealthCheck, redis_resource
from adapters.sqlalchemy.engine import SqlAlchemyHealthCheck, engine_resource
from adapters.structlog.setup import logging_resource
from ports.auth import TokenMinter, TokenVerifier
from ports.health import HealthCheck
from ports.metrics import Metrics, NullMetrics
from services.readiness import ReadinessService
from settings import Settings, load_settings

__all__ = ["Container", "build_container", "package_version"]


def package_version() -> str:
    """The installed distribution's version."""
    try:
        return version("switchyard")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0.0.0+source"


def _health_checks(engine: AsyncEngine, redis: Redis | None) -> list[HealthCheck]:
    checks: list[HealthCheck] = [SqlAlchemyHealthCheck(engine)]
    if redis is not None:
        checks.append(RedisHealthCheck(redis))
    return checks


class Container(containers.DeclarativeContainer):
    """Everything Switchyard is made of, built once per process (tests build their own)."""

    # --- infrastructure -------------------------------------------------------------------------------------------
    settings: providers.Provider[Settings] = providers.Singleton(load_settings)
    version: providers.Provider[str] = providers.Object(package_version())
    logging = providers.Resource(logging_resource, settings.provided.logging)
    database_engine = providers.Resource(engine_resource, settings.provided.database)
    redis_client = providers.Resource(redis_resource, settings.provided.redis)

    # --- adapters, typed by port ----------------------------------------------------------------------------------
    metrics: providers.Provider[Metrics] = providers.Singleton(NullMetrics)
    token_verifier: providers.Provider[TokenVerifier] = providers.Singleton(
        JoseTokenVerifier, settings.provided.auth, settings.provided.auth.jwt_secret
    )
    token_minter: providers.Provider[TokenMinter] = providers.Singleton(
        JoseTokenMinter, settings.provided.auth.jwt_secret
    )
    health_checks: providers.Provider[list[HealthCheck]] = providers.Singleton(
        _health_checks, database_engine, redis_client
    )

    # --- services ---------------------------------------------------------------------------------------------
    readiness: providers.Provider[ReadinessService] = providers.Singleton(ReadinessService, health_checks)


def build_container(settings: Settings | None = None, **overrides: Any) -> Container:
    """A container for ``settings`` (loaded from the environment when omitted), with optional provider overrides."""
    container = Container()
    if settings is not None:
        container.settings.override(providers.Object(settings))
    for name, value in overrides.items():
        getattr(container, name).override(value if isinstance(value, providers.Provider) else providers.Object(value))
    return container
