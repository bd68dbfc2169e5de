"""Settings: the model catalog file and the OpenAI-compatible vendors, read into domain values.

``settings/catalog.toml`` ships the built-in entries; ``providers.catalog_path`` names the user's file, whose entries
replace built-in ones with the same ``provider/id`` and add the rest. ``[[providers.compatible]]`` settings entries
replace the built-in vendors below by ``name`` or add new ones; each entry's ``models`` become catalog entries when
the catalog lacks them. Every mistake is a ``ConfigurationError`` naming the file and the entry.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import attrs
import cattrs
from cattrs.errors import BaseValidationError

from domain.catalog import CAPABILITIES, ModelSpec
from domain.errors import ConfigurationError
from settings.model import CompatibleProviderSettings, ProvidersSettings, Settings
from settings.secret import Secret

__all__ = [
    "BUILTIN_CATALOG",
    "BUILTIN_COMPATIBLE",
    "compatible_enabled",
    "load_catalog",
    "parse_catalog",
    "resolve_compatible",
]

BUILTIN_CATALOG: Final = Path(__file__).with_name("catalog.toml")
_APIS: Final = frozenset({"chat", "responses", "imagen"})


def _vendor(name: str, base_url: str | None, key_env: str | None, *, requires_key: bool = True) -> Any:
    return CompatibleProviderSettings(
        name=name,
        base_url=base_url,
        base_url_env=f"{name.upper()}_BASE_URL",
        api_key_env=key_env,
        requires_key=requires_key,
    )


# The OpenAI-compatible vendors Switchyard knows out of the box; their models are in catalog.toml.
BUILTIN_COMPATIBLE: Final[tuple[CompatibleProviderSettings, ...]] = (
    _vendor("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    _vendor("perplexity", "https://api.perplexity.ai", "PERPLEXITY_API_KEY"),
    _vendor("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    _vendor("xai", "https://api.x.ai/v1", "XAI_API_KEY"),
    _vendor("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    _vendor("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    _vendor("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    # Local servers: no key needed, enabled once their base URL is set (e.g. http://127.0.0.1:11434/v1).
    _vendor("ollama", None, "OLLAMA_API_KEY", requires_key=False),
    _vendor("vllm", None, "VLLM_API_KEY", requires_key=False),
)


def _legacy_key(providers: ProvidersSettings, name: str) -> Secret | None:
    # ``providers.groq_api_key`` / ``providers.perplexity_api_key`` predate the compatible list and still count.
    value = getattr(providers, f"{name}_api_key", None)
    return value if isinstance(value, Secret) else None


def resolve_compatible(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """``settings`` with ``providers.compatible`` merged over the built-ins and keys/URLs read from their variables."""
    providers = settings.providers
    merged = {v.name: v for v in BUILTIN_COMPATIBLE}
    for entry in providers.compatible:
        if not entry.name or "/" in entry.name:
            raise ConfigurationError("providers.compatible", f"invalid vendor name {entry.name!r}")
        merged[entry.name] = entry
    for name in ("openai", "anthropic", "gemini", "elevenlabs"):
        _check_base_url(getattr(providers, f"{name}_base_url"), f"providers.{name}_base_url")
    resolved = []
    for vendor in merged.values():
        key = vendor.api_key or _legacy_key(providers, vendor.name)
        if key is None and vendor.api_key_env and environ.get(vendor.api_key_env):
            key = Secret(environ[vendor.api_key_env])
        from_env = environ.get(vendor.base_url_env) if vendor.base_url_env else None
        base_url = from_env or vendor.base_url
        origin = vendor.base_url_env if from_env else f"providers.compatible[{vendor.name}].base_url"
        _check_base_url(base_url or None, str(origin))
        resolved.append(attrs.evolve(vendor, api_key=key, base_url=base_url or None))
    return attrs.evolve(settings, providers=attrs.evolve(providers, compatible=tuple(resolved)))


def _check_base_url(url: str | None, key: str) -> None:
    """A vendor's base URL must be an absolute http(s) URL with a host (and a numeric port): caught at start, not at
    the first request, where the SDK's error would name neither the vendor nor the setting."""
    if url is None:
        return
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number, an unbalanced IPv6 bracket
        port_ok = False
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ConfigurationError(key, f"{url!r} is not an http(s) URL such as https://api.example.com/v1")


def compatible_enabled(vendor: CompatibleProviderSettings) -> bool:
    """Whether a (resolved) vendor is configured: a key, or a base URL for a local server."""
    if vendor.base_url is None:
        return False
    return vendor.api_key is not None or not vendor.requires_key


# --- the catalog file ------------------------------------------------------------------------------------------


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def strict_str(value: object, _: type) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value

    def strict_int(value: object, _: type) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {value!r}")
        return value

    def strict_float(value: object, _: type) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)

    def strict_bool(value: object, _: type) -> bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {value!r}")
        return value

    converter.register_structure_hook(str, strict_str)
    converter.register_structure_hook(int, strict_int)
    converter.register_structure_hook(float, strict_float)
    # Registered after int: hooks dispatch by class, and bool is a subclass of int (``adjustable_dimensions``).
    converter.register_structure_hook(bool, strict_bool)
    converter.register_structure_hook_func(
        lambda t: t == dict[str, Any], lambda v, _: dict(v) if isinstance(v, dict) else _no_table(v)
    )
    return converter


def _no_table(value: object) -> dict[str, Any]:
    raise TypeError(f"expected a table, got {value!r}")


_CONVERTER: Final = _make_converter()


def _entry_error(origin: str, index: int, raw: object, detail: str) -> ConfigurationError:
    name = ""
    if isinstance(raw, Mapping):
        name = f" ({raw.get('provider', '?')}/{raw.get('id', '?')})"
    return ConfigurationError(f"{origin}: models[{index}]{name}", detail)


def _check(spec: ModelSpec) -> str | None:
    unknown = sorted(spec.capabilities - CAPABILITIES)
    if unknown:
        return f"unknown capabilities {unknown}; known: {', '.join(sorted(CAPABILITIES))}"
    if spec.api is not None and spec.api not in _APIS:
        return f"api must be one of {sorted(_APIS)}, got {spec.api!r}"
    if not spec.id or not spec.provider or "/" in spec.provider:
        return "id and provider must be non-empty, and provider must not contain '/'"
    return None


def parse_catalog(data: Mapping[str, Any], origin: str) -> list[ModelSpec]:
    """Catalog entries from a parsed TOML document (``[[models]]`` tables); ``origin`` names it in errors."""
    extra = sorted(set(data) - {"models"})
    if extra:
        raise ConfigurationError(origin, f"unknown top-level keys {extra}; expected only [[models]]")
    entries = data.get("models", [])
    if not isinstance(entries, list):
        raise ConfigurationError(origin, "models must be an array of tables ([[models]])")
    specs: list[ModelSpec] = []
    seen: set[str] = set()
    for index, raw in enumerate(entries):
        try:
            spec = _CONVERTER.structure(raw, ModelSpec)
        except BaseValidationError as exc:
            detail = "; ".join(cattrs.transform_error(exc))
            raise _entry_error(origin, index, raw, detail) from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise _entry_error(origin, index, raw, str(exc)) from None
        problem = _check(spec)
        if problem is not None:
            raise _entry_error(origin, index, raw, problem)
        if spec.qualified_id in seen:
            raise _entry_error(origin, index, raw, f"{spec.qualified_id!r} is listed twice")
        seen.add(spec.qualified_id)
        specs.append(spec)
    return specs


def _read(path: Path, key: str) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigurationError(key, f"catalog file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(key, f"catalog file {str(path)!r} is not valid TOML: {exc}") from None


def _check_aliases(specs: Sequence[ModelSpec]) -> None:
    owner: dict[str, str] = {}
    for spec in specs:
        for alias in spec.aliases:
            if alias in owner and owner[alias] != spec.qualified_id:
                raise ConfigurationError(
                    "model catalog", f"alias {alias!r} names both {owner[alias]!r} and {spec.qualified_id!r}"
                )
            owner[alias] = spec.qualified_id


def _vendor_models(vendors: Iterable[CompatibleProviderSettings]) -> list[ModelSpec]:
    return [
        ModelSpec(id=model, provider=v.name, capabilities=frozenset(v.capabilities))
        for v in vendors
        for model in v.models
    ]


def load_catalog(
    user_path: Path | None = None,
    *,
    vendors: Iterable[CompatibleProviderSettings] = (),
    builtin_path: Path = BUILTIN_CATALOG,
) -> list[ModelSpec]:
    """The effective catalog: built-in file, then the user's file, then the vendors' extra ``models``."""
    merged = {s.qualified_id: s for s in parse_catalog(_read(builtin_path, str(builtin_path)), str(builtin_path))}
    if user_path is not None:
        for spec in parse_catalog(_read(user_path, "providers.catalog_path"), str(user_path)):
            merged[spec.qualified_id] = spec
    for spec in _vendor_models(vendors):
        merged.setdefault(spec.qualified_id, spec)
    specs = list(merged.values())
    for spec in specs:
        for capability in spec.capabilities - CAPABILITIES:
            raise ConfigurationError(f"providers.compatible: {spec.provider}", f"unknown capability {capability!r}")
    _check_aliases(specs)
    return specs
