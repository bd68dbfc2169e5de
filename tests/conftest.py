"""Shared fixtures: test settings, a started app and its test client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from quart import Quart
from quart.typing import TestClientProtocol

from container import Container
from entrypoints.http.app import create_app
from settings import Settings
from tests.emulator import RunningEmulator, running_emulator
from tests.support.app import make_container, make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Test settings with SQLite in a temporary folder."""
    return make_settings(tmp_path)


@pytest.fixture
def container(settings: Settings) -> Container:
    """A fresh container for the test settings."""
    return make_container(settings)


@pytest.fixture
async def app(container: Container) -> AsyncIterator[Quart]:
    """The Quart app with its lifespan started (resources initialised) and stopped after the test."""
    application = create_app(container)
    async with application.test_app():
        yield application
    container.unwire()


@pytest.fixture
def client(app: Quart) -> TestClientProtocol:
    """A test client for the started app."""
    return app.test_client()


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    """A vendor emulator on loopback for the module (its scripted scenarios and request log belong to that module)."""
    with running_emulator() as running:
        yield running
