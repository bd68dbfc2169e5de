"""The first hour with Switchyard (issue 15): a fast ``switchyard version``, the embedded database under
``app.data_dir``, ``switchyard config`` masking only a URL's password, one-line failures for a bad migration revision,
an unreachable database and a malformed vendor base URL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from domain.errors import ConfigurationError
from entrypoints.cli import main
from settings import load_settings
from settings.loader import mask_url_password, masked_dict
from tests.support.app import TEST_SECRET

_SDKS = ("openai", "anthropic", "google.genai", "elevenlabs")
_LOADED = "import sys; print('loaded:' + ','.join(sorted(m for m in sys.modules if m.startswith({prefixes}))))"


def _modules_after(code: str, prefixes: tuple[str, ...]) -> list[str]:
    """The modules with one of ``prefixes`` that a fresh interpreter has loaded after running ``code``."""
    script = f"{code}\n{_LOADED.format(prefixes=prefixes)}"
    env = {"PATH": "/usr/bin:/bin", "SWITCHYARD_ENV": "test"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("loaded:"), result.stdout
    return [name for name in last.removeprefix("loaded:").split(",") if name]


def test_switchyard_version_imports_neither_the_container_nor_any_sdk() -> None:
    """`switchyard version` reads the installed version only: no container, no vendor SDK (it took ~5 s)."""
    code = "from entrypoints.cli import main; main(['version'])"
    assert _modules_after(code, ("container", "adapters", *_SDKS)) == []


def test_the_container_imports_no_vendor_sdk_until_a_vendor_is_built() -> None:
    """Importing (and building) the container loads no SDK: each is imported when its configured vendor is built."""
    code = "from container import build_container; build_container()"
    assert _modules_after(code, _SDKS) == []


def test_the_default_database_lives_under_the_data_dir(tmp_path: Path) -> None:
    """Unset database.url means SQLite at <app.data_dir>/switchyard.db; an explicit URL still wins."""
    settings = load_settings({"SWITCHYARD_APP_DATA_DIR": str(tmp_path)})
    assert settings.database.url.reveal() == f"sqlite+aiosqlite:///{tmp_path}/switchyard.db"
    explicit = load_settings({"SWITCHYARD_APP_DATA_DIR": str(tmp_path), "SWITCHYARD_DATABASE_URL": "sqlite://"})
    assert explicit.database.url.reveal() == "sqlite://"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+asyncpg://bob:hunter2@db.example:5432/sy",
            "postgresql+asyncpg://bob:**********@db.example:5432/sy",
        ),
        ("postgresql+asyncpg://bob:pa:ss@db/sy", "postgresql+asyncpg://bob:**********@db/sy"),
        (
            "postgresql+asyncpg://db/sy?user=bob&password=hunter2",
            "postgresql+asyncpg://db/sy?user=bob&password=**********",
        ),
        ("sqlite+aiosqlite:///var/switchyard.db", "sqlite+aiosqlite:///var/switchyard.db"),
    ],
)
def test_only_the_password_of_a_url_is_masked(url: str, shown: str) -> None:
    """Host, port, database and user stay readable; the password (user info or query) is masked."""
    assert mask_url_password(url) == shown


def test_config_shows_the_database_and_redis_urls_but_not_their_passwords() -> None:
    """`switchyard config`'s data: the URLs with their passwords masked, other secrets masked whole."""
    settings = load_settings(
        {
            "SWITCHYARD_DATABASE_URL": "postgresql+asyncpg://bob:hunter2@db:5432/sy",
            "SWITCHYARD_REDIS_URL": "redis://:r3dis@cache:6379/0",
            "SWITCHYARD_AUTH_JWT_SECRET": "x" * 40,
        }
    )
    shown = masked_dict(settings)
    assert shown["database"]["url"] == "postgresql+asyncpg://bob:**********@db:5432/sy"
    assert shown["redis"]["url"] == "redis://:**********@cache:6379/0"
    assert shown["auth"]["jwt_secret"] == "**********"
    assert "hunter2" not in json.dumps(shown, default=str)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "ELEVENLABS_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SWITCHYARD_ENV", "test")
    monkeypatch.setenv("SWITCHYARD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SWITCHYARD_AUTH_JWT_SECRET", TEST_SECRET.reveal())
    monkeypatch.setenv("SWITCHYARD_HTTP_METRICS_ENABLED", "false")
    return tmp_path


@pytest.mark.usefixtures("cli_env")
def test_migrate_to_an_unknown_revision_says_so_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """`switchyard migrate --revision nope` exits 1 with one line naming the revision (it was a 97-line traceback)."""
    assert main(["migrate", "--revision", "nope"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["switchyard: validation_error: revision: Can't locate revision identified by 'nope'"]


def test_an_unreachable_database_says_why_in_one_line(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """PostgreSQL refusing connections: one line with the driver's reason (refused, the address), no traceback."""
    monkeypatch.setenv("SWITCHYARD_DATABASE_URL", "postgresql+asyncpg://bob:hunter2@127.0.0.1:1/sy")
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(
        "switchyard: database_error: could not upgrade the database schema of "
        "postgresql+asyncpg://bob:***@127.0.0.1:1/sy: ConnectionRefusedError: "
    )
    assert "hunter2" not in err[0]


def test_a_malformed_compatible_base_url_fails_at_start_naming_it(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`[[providers.compatible]]` with `base_url = "localhost:8080/v1"` stops every command, the entry named."""
    config = cli_env / "switchyard.toml"
    config.write_text('[[providers.compatible]]\nname = "mine"\nbase_url = "localhost:8080/v1"\napi_key = "k"\n')
    monkeypatch.setenv("SWITCHYARD_CONFIG", str(config))
    assert main(["config"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "switchyard: configuration error: providers.compatible[mine].base_url: 'localhost:8080/v1' is not an "
        "http(s) URL such as https://api.example.com/v1"
    ]


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"OLLAMA_BASE_URL": "http://127.0.0.1:port/v1"}, "OLLAMA_BASE_URL"),
        ({"SWITCHYARD_PROVIDERS_OPENAI_BASE_URL": "api.openai.com/v1"}, "providers.openai_base_url"),
    ],
)
def test_a_malformed_base_url_from_a_variable_names_the_variable(environ: dict[str, str], key: str) -> None:
    """A base URL set by a variable is named by that variable (or by its settings key)."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ)
    assert caught.value.key == key
