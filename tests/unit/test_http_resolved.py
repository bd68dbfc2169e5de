"""Hot-path providers settled at app start: a request gets the singleton itself, not a Future to await."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

from dependency_injector import containers, providers

from entrypoints.http.resolved import settle, unsettle


async def _database() -> AsyncIterator[str]:
    yield "db"


class _Service:
    def __init__(self, database: str) -> None:
        self.database = database


class _Container(containers.DeclarativeContainer):
    database = providers.Resource(_database)
    service = providers.Singleton(_Service, database)
    plain = providers.Singleton(_Service, "no-db")


async def test_an_async_singleton_is_built_once_and_then_handed_over_as_it_is() -> None:
    """Before: each call is an awaitable (a Task per @inject argument); after settle: the instance itself, the
    same one; unsettle restores async mode for a container started again."""
    container = _Container()
    await container.init_resources()  # type: ignore[misc]
    before = container.service()
    assert inspect.isawaitable(before)
    built = await before
    settled = await settle(container, ("service", "plain", "database", "missing"))
    assert settled == [container.service]  # sync singletons, resources and unknown names are left alone
    assert container.service() is built
    assert built.database == "db"
    unsettle(settled)
    again = container.service()
    assert inspect.isawaitable(again)
    assert await again is built
    await container.shutdown_resources()  # type: ignore[misc]


async def test_an_overridden_provider_is_left_alone() -> None:
    """Tests that swap a provider keep what they swapped in."""
    container = _Container()
    await container.init_resources()  # type: ignore[misc]
    with container.service.override(providers.Object(_Service("fake"))):
        assert await settle(container, ("service",)) == []
        assert container.service().database == "fake"
    await container.shutdown_resources()  # type: ignore[misc]
