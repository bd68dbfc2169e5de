"""`switchyard token` and the development-token rule of `switchyard serve`."""

from __future__ import annotations

import os
import time

import attrs
import pytest

from adapters.jose.verifier import JoseTokenVerifier
from entrypoints.cli import _needs_dev_secret, main
from settings import Secret, load_settings
from tests.support.app import TEST_SECRET


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from no SWITCHYARD_* variable at all."""
    for name in list(os.environ):
        if name.startswith("SWITCHYARD_"):
            monkeypatch.delenv(name)


async def test_token_mints_a_token_the_server_accepts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--sub, --email, repeated --scope and --ttl end up in a token the configured verifier accepts."""
    monkeypatch.setenv("SWITCHYARD_ENV", "test")
    monkeypatch.setenv("SWITCHYARD_AUTH_JWT_SECRET", TEST_SECRET.reveal())
    argv = ["token", "--sub", "alice", "--email", "a@example.com", "--scope", "chat", "--scope", "admin"]
    assert main([*argv, "--ttl", "30m"]) == 0
    token = capsys.readouterr().out.strip()
    settings = load_settings()
    auth = await JoseTokenVerifier(settings.auth, settings.auth.jwt_secret).verify(token)
    assert auth.customer_id == "alice"
    assert auth.email == "a@example.com"
    assert auth.scopes == {"chat", "admin"}
    assert auth.expires_at is not None
    assert 1790 < auth.expires_at - time.time() <= 1800


def test_token_refuses_in_production(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Production, even fully configured, never mints: exit 2 with one line saying so."""
    monkeypatch.setenv("SWITCHYARD_ENV", "production")
    monkeypatch.setenv("SWITCHYARD_DATABASE_URL", "postgresql+asyncpg://u@db/x")
    monkeypatch.setenv("SWITCHYARD_AUTH_JWT_SECRET", TEST_SECRET.reveal())
    assert main(["token", "--sub", "alice"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "refuses to mint tokens in production" in captured.err


def test_token_without_a_secret_points_to_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    """Local without a secret: one line naming the variable and the dev-token alternative."""
    assert main(["token", "--sub", "alice"]) == 2
    err = capsys.readouterr().err
    assert "SWITCHYARD_AUTH_JWT_SECRET" in err
    assert "development token" in err


def test_short_secret_is_refused(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A brute-forceable HS256 secret stops the command with the minimum length named."""
    monkeypatch.setenv("SWITCHYARD_AUTH_JWT_SECRET", "changeme")
    assert main(["token", "--sub", "alice"]) == 2
    assert "at least 32 bytes" in capsys.readouterr().err


@pytest.mark.parametrize("ttl", ["soon", "0", "-5m", "1x"])
def test_bad_ttl_is_a_usage_error(ttl: str, capsys: pytest.CaptureFixture[str]) -> None:
    """An unreadable or non-positive --ttl is an argparse error (exit 2), not a traceback."""
    with pytest.raises(SystemExit) as exited:
        main(["token", "--sub", "alice", "--ttl", ttl])
    assert exited.value.code == 2
    assert "--ttl" in capsys.readouterr().err


def test_dev_secret_only_in_local_without_any_key() -> None:
    """serve invents a secret only in local, with dev_token on and no secret, JWKS URL or public key."""
    local = load_settings({})
    assert _needs_dev_secret(local)
    assert _needs_dev_secret(attrs.evolve(local, auth=attrs.evolve(local.auth, jwt_secret=Secret(""))))
    for auth in (
        attrs.evolve(local.auth, jwt_secret=TEST_SECRET),
        attrs.evolve(local.auth, jwks_url="http://127.0.0.1:1/jwks.json"),
        attrs.evolve(local.auth, dev_token=False),
    ):
        assert not _needs_dev_secret(attrs.evolve(local, auth=auth))
    assert not _needs_dev_secret(load_settings({"SWITCHYARD_ENV": "test", "SWITCHYARD_AUTH_DEV_TOKEN": "true"}))
