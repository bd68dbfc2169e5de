"""Test helper: is PostgreSQL / Redis up? Skip when not, fail when ``SWITCHYARD_REQUIRE_SERVICES=1`` (CI)."""

from __future__ import annotations

import os
import socket
from typing import Final, NoReturn

import pytest

__all__ = ["POSTGRES_URL", "REDIS_URL", "require_service", "service_missing"]

POSTGRES_URL: Final = os.environ.get(
    "SWITCHYARD_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL: Final = os.environ.get("SWITCHYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def service_missing(name: str, reason: str) -> NoReturn:
    """Skip locally; fail in CI, where every service-backed test must run."""
    message = f"{name} is not available: {reason}"
    if os.environ.get("SWITCHYARD_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} (SWITCHYARD_REQUIRE_SERVICES=1 turns this skip into a failure)")
    pytest.skip(message)


def require_service(name: str) -> str:
    """The URL of ``postgres`` or ``redis`` when its port answers; otherwise skip or fail."""
    url, port = (POSTGRES_URL, 5432) if name == "postgres" else (REDIS_URL, 6379)
    if not _port_open("127.0.0.1", port):
        service_missing(name, f"nothing listens on 127.0.0.1:{port}")
    return url
