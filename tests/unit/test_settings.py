"""Settings: precedence, types, environments as data, fail-fast validation naming the key, secrets masked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from domain.errors import ConfigurationError
from settings import Secret, load_settings
from settings.loader import describe, masked_dict


def test_defaults_are_the_embedded_local_setup() -> None:
    """No environment at all gives local, SQLite under var/, the in-memory stream log, port 8000."""
    settings = load_settings({})
    assert settings.app.env == "local"
    assert settings.database.url.reveal().startswith("sqlite+aiosqlite:///var/")
    assert settings.streaming.backend == "memory"
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8000)


def test_environment_variables_and_vendor_names_are_read() -> None:
    """SWITCHYARD_<SECTION>_<KEY> and the vendors' own variable names."""
    settings = load_settings(
        {
            "SWITCHYARD_HTTP_PORT": "9001",
            "SWITCHYARD_AUTH_ALGORITHMS": "HS256, RS256",
            "SWITCHYARD_STREAMING_RESUME_GRACE_S": "0",
            "OPENAI_API_KEY": "sk-test-aaaaaaaaaaaa",
            "GOOGLE_API_KEY": "AIza-google",
        }
    )
    assert settings.http.port == 9001
    assert settings.auth.algorithms == ("HS256", "RS256")
    assert settings.streaming.resume_grace_s == 0.0
    assert settings.providers.openai_api_key == Secret("sk-test-aaaaaaaaaaaa")
    assert settings.providers.gemini_api_key == Secret("AIza-google")


def test_toml_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    """SWITCHYARD_CONFIG names a TOML file; environment variables take precedence over it."""
    config = tmp_path / "switchyard.toml"
    config.write_text('[http]\nport = 7000\nhost = "0.0.0.0"\n[streaming]\nkeepalive_s = 5\n')
    settings = load_settings({"SWITCHYARD_CONFIG": str(config), "SWITCHYARD_HTTP_PORT": "7001"})
    assert settings.http.port == 7001
    assert settings.http.host == "0.0.0.0"
    assert settings.streaming.keepalive_s == 5.0


def test_environment_defaults_come_from_data() -> None:
    """staging logs JSON and needs explicit database and auth settings."""
    settings = load_settings(
        {
            "SWITCHYARD_ENV": "staging",
            "SWITCHYARD_DATABASE_URL": "postgresql+asyncpg://u:p@db/x",
            "SWITCHYARD_AUTH_JWKS_URL": "https://issuer/jwks.json",
        }
    )
    assert settings.logging.format == "json"
    assert settings.auth.dev_token is False


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"SWITCHYARD_HTTP_PORT": "eighty"}, "SWITCHYARD_HTTP_PORT"),
        ({"SWITCHYARD_HTTP_METRICS_ENABLED": "maybe"}, "SWITCHYARD_HTTP_METRICS_ENABLED"),
        ({"SWITCHYARD_ENV": "prod"}, "SWITCHYARD_ENV"),
        ({"SWITCHYARD_HTTP_PROT": "80"}, "SWITCHYARD_HTTP_PROT"),
        ({"SWITCHYARD_NOPE_X": "1"}, "SWITCHYARD_NOPE_X"),
        ({"SWITCHYARD_STREAMING_BACKEND": "kafka"}, "SWITCHYARD_STREAMING_BACKEND"),
        ({"SWITCHYARD_ENV": "production"}, "SWITCHYARD_DATABASE_URL"),
        (
            {"SWITCHYARD_ENV": "production", "SWITCHYARD_DATABASE_URL": "postgresql+asyncpg://db/x"},
            "SWITCHYARD_AUTH_JWT_SECRET or SWITCHYARD_AUTH_JWKS_URL or SWITCHYARD_AUTH_PUBLIC_KEYS",
        ),
        ({"SWITCHYARD_CONFIG": "/nonexistent/switchyard.toml"}, "SWITCHYARD_CONFIG"),
    ],
)
def test_bad_settings_fail_fast_naming_the_key(environ: dict[str, str], key: str) -> None:
    """Every configuration mistake names the variable to fix."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ)
    assert caught.value.key == key
    assert str(caught.value).startswith(key)


def test_secrets_never_appear_in_repr_or_config_output() -> None:
    """repr() of the settings and the masked dict carry no secret value."""
    settings = load_settings(
        {
            "OPENAI_API_KEY": "sk-live-supersecret-1234",
            "SWITCHYARD_AUTH_JWT_SECRET": "jwt-secret-value-xyz",
            "SWITCHYARD_DATABASE_URL": "postgresql+asyncpg://user:dbpass@db/x",
        }
    )
    text = repr(settings) + str(masked_dict(settings))
    for secret in ("sk-live-supersecret-1234", "jwt-secret-value-xyz", "dbpass"):
        assert secret not in text
    assert settings.providers.openai_api_key is not None
    assert settings.providers.openai_api_key.reveal() == "sk-live-supersecret-1234"


def test_describe_lists_every_setting_with_its_variable() -> None:
    """The README table's source covers every section."""
    rows = {key: variable for key, variable, _ in describe()}
    assert rows["http.port"] == "SWITCHYARD_HTTP_PORT"
    assert rows["app.env"] == "SWITCHYARD_ENV"
    assert {key.split(".")[0] for key in rows} >= {"app", "http", "auth", "database", "redis", "streaming", "limits"}


def test_cli_exits_with_one_line_and_no_traceback() -> None:
    """A configuration error ends `switchyard config` with exit 2 and a single readable line."""
    result = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "config"],
        env={"SWITCHYARD_ENV": "production", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "switchyard: configuration error: SWITCHYARD_DATABASE_URL: must be set in the 'production' environment"
    ]


def test_cli_config_masks_secrets() -> None:
    """`switchyard config` prints the effective settings with secrets masked."""
    result = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "config"],
        env={"OPENAI_API_KEY": "sk-cli-secret-999999", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "sk-cli-secret-999999" not in result.stdout
    assert '"openai_api_key": "**********"' in result.stdout
