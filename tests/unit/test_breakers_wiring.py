"""Container wiring of the breakers: off, per process, or on Redis when redis.url is set; bad settings fail at start."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from adapters.memory.breakers import InMemoryBreakerStore
from adapters.redis.breakers import RedisBreakerStore
from container import Container
from domain.errors import ConfigurationError
from domain.health import BreakerPolicy
from services.attempts import AttemptRunner
from services.breakers import CircuitBreakers, NullBreakers
from settings import Secret
from tests.support.app import make_container, make_settings


async def _resolved(container: Container, name: str) -> Any:
    value = getattr(container, name)()
    return await value if inspect.isawaitable(value) else value


async def _shutdown(container: Container) -> None:
    result = container.shutdown_resources()
    if result is not None:
        await result


async def test_breakers_are_on_by_default_in_process_and_reach_the_runner(tmp_path: Path) -> None:
    """Default settings: CircuitBreakers over the in-process store, with the policy in milliseconds, in the runner."""
    container = make_container(make_settings(tmp_path))
    breakers = await _resolved(container, "breakers")
    assert isinstance(breakers, CircuitBreakers)
    assert isinstance(breakers._store, InMemoryBreakerStore)
    assert breakers.policy == BreakerPolicy(
        failure_threshold=5, error_rate_threshold=0.5, window_ms=60_000, min_volume=20, open_ms=30_000
    )
    runner: AttemptRunner = await _resolved(container, "attempt_runner")
    assert runner.breakers is breakers
    await _shutdown(container)


async def test_a_redis_url_shares_the_breakers_through_redis(tmp_path: Path) -> None:
    """With redis.url set the store is Redis (the client connects lazily: no server needed to build it)."""
    settings = make_settings(tmp_path, redis={"url": Secret("redis://127.0.0.1:6379/15")})
    container = make_container(settings)
    breakers = await _resolved(container, "breakers")
    assert isinstance(breakers._store, RedisBreakerStore)
    await _shutdown(container)


async def test_disabled_breakers_are_the_null_ones(tmp_path: Path) -> None:
    """breaker.enabled = false: NullBreakers, the runner's behaviour without breakers."""
    container = make_container(make_settings(tmp_path, breaker={"enabled": False}))
    assert isinstance(await _resolved(container, "breakers"), NullBreakers)
    await _shutdown(container)


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"open_s": 0.0}, "breaker.open_s"),
        ({"window_s": -1.0}, "breaker.window_s"),
        ({"failure_threshold": 0}, "breaker.failure_threshold"),
        ({"error_rate_threshold": 1.5}, "breaker.error_rate_threshold"),
        ({"half_open_probes": 0}, "breaker.half_open_probes"),
    ],
)
async def test_unworkable_breaker_settings_name_their_key(tmp_path: Path, values: dict[str, Any], key: str) -> None:
    """A zero cool-down, a negative window, a zero threshold, a rate above 1 or no probes: ConfigurationError."""
    container = make_container(make_settings(tmp_path, breaker=values))
    with pytest.raises(ConfigurationError) as caught:
        await _resolved(container, "breakers")
    assert caught.value.key == key
    await _shutdown(container)
