"""Test helper: settings for tests, a container and Quart app built from them, and bearer tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from adapters.jose.minter import JoseTokenMinter
from container import Container, build_container
from settings import Secret, Settings, load_settings

__all__ = ["TEST_SECRET", "auth_headers", "make_container", "make_settings", "mint"]

TEST_SECRET = Secret("test-secret-that-is-long-enough-for-hs256-0123456789")


def make_settings(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    """Test-environment settings: SQLite under ``tmp_path``, a fixed JWT secret; ``sections`` override fields."""
    base = load_settings({"SWITCHYARD_ENV": "test"})
    base = attrs.evolve(
        base,
        database=attrs.evolve(base.database, url=Secret(f"sqlite+aiosqlite:///{tmp_path / 'switchyard.db'}")),
        auth=attrs.evolve(base.auth, jwt_secret=TEST_SECRET),
        app=attrs.evolve(base.app, data_dir=tmp_path),
    )
    changes = {name: attrs.evolve(getattr(base, name), **values) for name, values in sections.items()}
    return attrs.evolve(base, **changes)


def make_container(settings: Settings, **overrides: Any) -> Container:
    """A container for ``settings`` with provider overrides (fakes)."""
    return build_container(settings, **overrides)


def mint(subject: str = "alice", *, scopes: tuple[str, ...] = (), ttl_s: float = 3600.0) -> str:
    """A valid token signed with ``TEST_SECRET``."""
    return JoseTokenMinter(TEST_SECRET).mint(subject, email=f"{subject}@example.com", scopes=scopes, ttl_s=ttl_s)


def auth_headers(subject: str = "alice", **kwargs: Any) -> dict[str, str]:
    """``Authorization`` header for ``subject``."""
    return {"Authorization": f"Bearer {mint(subject, **kwargs)}"}
