"""`switchyard serve --workers N` without Redis refuses to start when limits are configured (each worker would count
them on its own, allowing N times the limit): a quotas default, a per-customer override or a key with limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from container import build_container
from entrypoints.cli import main
from entrypoints.worker_limits import refuse_per_worker_limits
from settings import load_settings


@pytest.fixture(autouse=True)
def _database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_ENV", "test")
    monkeypatch.setenv("SWITCHYARD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}")
    monkeypatch.setenv("SWITCHYARD_APP_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SWITCHYARD_REDIS_URL", raising=False)


def test_a_quotas_default_with_several_workers_and_no_redis_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 with one line naming SWITCHYARD_REDIS_URL and why, before anything listens."""
    monkeypatch.setenv("SWITCHYARD_QUOTAS_REQUESTS_PER_MINUTE", "60")
    assert main(["serve", "--workers", "2", "--port", "1"]) == 2
    error = capsys.readouterr().err
    assert "SWITCHYARD_REDIS_URL" in error
    assert "2 workers" in error
    assert "quotas" in error


def test_a_key_with_limits_in_the_database_is_refused_too(capsys: pytest.CaptureFixture[str]) -> None:
    """No default, but a key issued with --rpm: still limits that would be counted per worker."""
    assert main(["keys", "create", "--customer", "acme", "--name", "ci", "--rpm", "5"]) == 0
    capsys.readouterr()
    assert main(["serve", "--workers", "3", "--port", "1"]) == 2
    assert "API key key_" in capsys.readouterr().err


async def test_one_worker_redis_or_no_limits_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """One worker, or Redis configured, or nothing limited: no refusal."""
    monkeypatch.setenv("SWITCHYARD_HTTP_WORKERS", "4")
    settings = load_settings()
    container = build_container(settings)
    try:
        assert await refuse_per_worker_limits(settings, container) == 0  # nothing limited
        monkeypatch.setenv("SWITCHYARD_QUOTAS_DAILY_BUDGET_USD", "5")
        monkeypatch.setenv("SWITCHYARD_REDIS_URL", "redis://127.0.0.1:6379/0")
        assert await refuse_per_worker_limits(load_settings(), container) == 0  # Redis counts for every worker
        monkeypatch.delenv("SWITCHYARD_REDIS_URL")
        monkeypatch.setenv("SWITCHYARD_HTTP_WORKERS", "1")
        assert await refuse_per_worker_limits(load_settings(), container) == 0  # one worker counts everything
    finally:
        result = container.shutdown_resources()
        if result is not None:
            await result
