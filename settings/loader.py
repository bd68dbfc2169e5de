"""Settings: load ``Settings`` once from defaults, the environment's data table, a TOML file and env variables.

Precedence, lowest first: built-in defaults, ``environments.toml[<env>]``, the file named by ``SWITCHYARD_CONFIG``,
``SWITCHYARD_<SECTION>_<KEY>`` variables and the vendors' own variables (``OPENAI_API_KEY`` ...). Anything wrong
(unknown key, bad type, unknown environment, a key the environment requires) raises ``ConfigurationError`` naming
the key as the user would set it.
"""

from __future__ import annotations

import os
import re
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from domain.errors import ConfigurationError
from settings.model import Settings
from settings.secret import MASK, Secret

__all__ = ["VENDOR_VARIABLES", "describe", "env_var_name", "load_settings", "mask_url_password", "masked_dict"]

_PREFIX: Final = "SWITCHYARD_"
_ENVIRONMENTS_FILE: Final = Path(__file__).with_name("environments.toml")
# Variables with the prefix that are not settings (read by the CLI or the test suite, never by the core).
_NOT_SETTINGS: Final = frozenset({"SWITCHYARD_CONFIG", "SWITCHYARD_REQUIRE_SERVICES"})
_SECTIONS: Final = tuple(a.name for a in attrs.fields(Settings))

# The vendors' conventional variable names, mapped to their settings key; the first variable found wins.
VENDOR_VARIABLES: Final[Mapping[str, tuple[str, ...]]] = {
    "providers.openai_api_key": ("OPENAI_API_KEY",),
    "providers.openai_base_url": ("OPENAI_BASE_URL",),
    "providers.anthropic_api_key": ("ANTHROPIC_API_KEY",),
    "providers.anthropic_base_url": ("ANTHROPIC_BASE_URL",),
    "providers.gemini_api_key": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "providers.gemini_base_url": ("GOOGLE_GEMINI_BASE_URL",),
    "providers.elevenlabs_api_key": ("ELEVENLABS_API_KEY",),
    "providers.groq_api_key": ("GROQ_API_KEY",),
    "providers.perplexity_api_key": ("PERPLEXITY_API_KEY",),
}
# The password of a URL's user info (``scheme://user:PASSWORD@host``, as SQLAlchemy reads it) or of its query.
_URL_PASSWORD: Final = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):[^@]*@")
_QUERY_PASSWORD: Final = re.compile(r"(?P<head>[?&]password=)[^&]*", re.I)
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def env_var_name(key: str) -> str:
    """``http.port`` -> ``SWITCHYARD_HTTP_PORT``; ``app.env`` is the short ``SWITCHYARD_ENV``."""
    if key == "app.env":
        return "SWITCHYARD_ENV"
    return _PREFIX + key.replace(".", "_").upper()


def _structure_bool(value: object, _: type) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


def _structure_int(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected an integer, got {value!r}") from None


def _structure_float(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"expected a number, got {value!r}") from None


def _structure_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _structure_tuple(value: object, cls: Any) -> tuple[Any, ...]:
    (item_type, _ellipsis) = typing.get_args(cls)
    items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"expected a list, got {value!r}")
    return tuple(_CONVERTER.structure(item, item_type) for item in items)


def _is_variadic_tuple(cls: Any) -> bool:
    args = typing.get_args(cls)
    return typing.get_origin(cls) is tuple and len(args) == 2 and args[1] is Ellipsis


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(Secret, lambda v, _: Secret(_structure_str(v, str)))
    converter.register_structure_hook(Path, lambda v, _: Path(_structure_str(v, str)))
    converter.register_structure_hook_func(
        _is_variadic_tuple,
        _structure_tuple,
    )
    converter.register_unstructure_hook(Secret, lambda _: MASK)
    converter.register_unstructure_hook(Path, str)
    return converter


_CONVERTER: Final = _make_converter()


def _read_toml(path: Path, key: str) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigurationError(key, f"file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(key, f"file {str(path)!r} is not valid TOML: {exc}") from None


def _merge(target: dict[str, Any], overlay: Mapping[str, Any], provided: set[str], origin: str) -> None:
    for section, values in overlay.items():
        if section not in _SECTIONS:
            raise ConfigurationError(f"{origin}: [{section}]", f"unknown section; known: {', '.join(_SECTIONS)}")
        if not isinstance(values, Mapping):
            raise ConfigurationError(f"{origin}: {section}", "expected a table")
        for key, value in values.items():
            target.setdefault(section, {})[key] = value
            provided.add(f"{section}.{key}")


def _from_environment(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for dotted, names in VENDOR_VARIABLES.items():
        for name in names:
            if environ.get(name):
                section, key = dotted.split(".", 1)
                found.setdefault(section, {})[key] = environ[name]
                break
    for name, value in environ.items():
        if not name.startswith(_PREFIX) or name in _NOT_SETTINGS or name.startswith("SWITCHYARD_TEST_"):
            continue
        if name == "SWITCHYARD_ENV":
            found.setdefault("app", {})["env"] = value
            continue
        rest = name[len(_PREFIX) :].lower()
        matched = next((s for s in _SECTIONS if rest.startswith(s + "_")), None)
        if matched is None:
            raise ConfigurationError(name, f"unknown setting; sections are {', '.join(_SECTIONS)}")
        found.setdefault(matched, {})[rest[len(matched) + 1 :]] = value
    return found


def _key_from_cattrs_path(path: str) -> str:
    # cattrs paths look like "$.http.port" or "$.auth.algorithms[1]".
    return path.removeprefix("$.").split("[", 1)[0]


def _structure(raw: dict[str, Any]) -> Settings:
    try:
        return _CONVERTER.structure(raw, Settings)
    except (ClassValidationError, IterableValidationError) as exc:
        messages = cattrs.transform_error(exc)
        first = messages[0] if messages else "invalid settings"
        reason, _, path = first.rpartition(" @ ")
        if reason.startswith("extra fields found"):
            section = _key_from_cattrs_path(path)
            extra = reason[reason.find("(") + 1 : reason.rfind(")")].split(",")[0].strip()
            key = f"{section}.{extra}"
            raise ConfigurationError(env_var_name(key), f"unknown setting {key!r}") from None
        key = _key_from_cattrs_path(path)
        cause = exc
        while isinstance(cause, ClassValidationError | IterableValidationError) and cause.exceptions:
            cause = cause.exceptions[0]  # type: ignore[assignment]
        detail = str(cause) if isinstance(cause, ValueError | TypeError) and str(cause) else reason
        raise ConfigurationError(env_var_name(key), detail) from None
    except ForbiddenExtraKeysError as exc:
        key = next(iter(exc.extra_fields))
        raise ConfigurationError(env_var_name(key), f"unknown setting {key!r}") from None


def _check_required(required: list[str], provided: set[str], settings_dict: Mapping[str, Any], env: str) -> None:
    for requirement in required:
        options = requirement.split("|")
        if not any(option in provided and _is_set(settings_dict, option) for option in options):
            names = " or ".join(env_var_name(option) for option in options)
            raise ConfigurationError(names, f"must be set in the {env!r} environment")


def _is_set(settings_dict: Mapping[str, Any], dotted: str) -> bool:
    section, key = dotted.split(".", 1)
    value = settings_dict.get(section, {}).get(key)
    return value not in (None, "", (), [])


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build and validate the settings; raises ``ConfigurationError`` naming the offending key."""
    environ = os.environ if environ is None else environ
    from_env = _from_environment(environ)
    config_path: str | None = environ.get("SWITCHYARD_CONFIG")
    from_file = _read_toml(Path(config_path), "SWITCHYARD_CONFIG") if config_path else {}

    env = str(from_env.get("app", {}).get("env") or from_file.get("app", {}).get("env") or "local")
    tables = _read_toml(_ENVIRONMENTS_FILE, "settings/environments.toml")
    if env not in tables:
        raise ConfigurationError("SWITCHYARD_ENV", f"unknown environment {env!r}; choose one of {', '.join(tables)}")
    env_table = dict(tables[env])
    required = list(env_table.pop("required", []))

    raw: dict[str, Any] = {}
    provided: set[str] = set()
    _merge(raw, env_table, set(), f"environments.toml [{env}]")
    _merge(raw, from_file, provided, str(config_path))
    _merge(raw, from_env, provided, "environment")
    raw.setdefault("app", {})["env"] = env
    settings = _structure(raw)
    _check_required(required, provided, raw, env)
    if "url" not in raw.get("database", {}):  # the embedded default lives under app.data_dir, not the working dir
        default_url = Secret(f"sqlite+aiosqlite:///{settings.app.data_dir / 'switchyard.db'}")
        settings = attrs.evolve(settings, database=attrs.evolve(settings.database, url=default_url))
    # [[providers.compatible]] merges over the built-in OpenAI-compatible vendors, and their key variables are read.
    from settings.catalog import resolve_compatible

    return resolve_compatible(settings, environ)


def mask_url_password(url: str) -> str:
    """``url`` with only its password masked: the host, database and user stay readable (``switchyard config``)."""
    url = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", url, count=1)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", url)


def masked_dict(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, every secret replaced by a mask (for ``switchyard config``); the
    database and Redis URLs show all but their password."""
    result: dict[str, Any] = _CONVERTER.unstructure(settings)
    result["database"]["url"] = mask_url_password(settings.database.url.reveal())
    if settings.redis.url is not None:
        result["redis"]["url"] = mask_url_password(settings.redis.url.reveal())
    return result


def describe() -> list[tuple[str, str, str]]:
    """Every setting as (key, environment variable, local default), for the README table and ``config --list``."""
    defaults = masked_dict(Settings())
    rows = []
    for section, values in defaults.items():
        for key, value in values.items():
            dotted = f"{section}.{key}"
            rows.append((dotted, env_var_name(dotted), repr(value)))
    return rows
