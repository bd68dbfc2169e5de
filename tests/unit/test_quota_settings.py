"""The `quotas` settings: read from SWITCHYARD_QUOTAS_* (unset is unlimited), and a negative limit or a zero TTL
stops the app at start naming the variable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from domain.errors import ConfigurationError
from domain.quotas import Limits
from settings import load_settings
from tests.support.app import make_container, make_settings


def test_quota_variables_become_the_default_limits() -> None:
    """Set variables become limits; the rest stay unset (unlimited)."""
    settings = load_settings(
        {
            "SWITCHYARD_ENV": "test",
            "SWITCHYARD_QUOTAS_REQUESTS_PER_MINUTE": "60",
            "SWITCHYARD_QUOTAS_DAILY_BUDGET_USD": "2.5",
        }
    )
    quotas = settings.quotas
    assert (quotas.requests_per_minute, quotas.daily_budget_usd, quotas.tokens_per_minute) == (60, 2.5, None)


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"requests_per_minute": -1}, "SWITCHYARD_QUOTAS_REQUESTS_PER_MINUTE"),
        ({"monthly_budget_usd": -0.5}, "SWITCHYARD_QUOTAS_MONTHLY_BUDGET_USD"),
        ({"reservation_ttl_s": 0.0}, "SWITCHYARD_QUOTAS_RESERVATION_TTL_S"),
    ],
)
async def test_bad_values_stop_the_start_naming_the_variable(
    tmp_path: Path, values: dict[str, Any], variable: str
) -> None:
    """A limit below 0 (use unset for unlimited) or a non-positive TTL is a configuration error at start."""
    container = make_container(make_settings(tmp_path, quotas=values))
    with pytest.raises(ConfigurationError) as caught:
        await container.init_resources()  # type: ignore[misc]
    assert caught.value.key == variable
    await container.shutdown_resources()  # type: ignore[misc]


async def test_the_gate_gets_the_settings_as_defaults(tmp_path: Path) -> None:
    """The container hands the settings to the gate as every customer's defaults."""
    container = make_container(make_settings(tmp_path, quotas={"concurrent_streams": 3}))
    await container.init_resources()  # type: ignore[misc]
    try:
        gate = await container.quota_gate()  # type: ignore[misc]
        assert gate.policy.defaults == Limits(concurrent_streams=3)
    finally:
        await container.shutdown_resources()  # type: ignore[misc]
