"""The catalog file and the OpenAI-compatible vendors: built-ins parse, user files extend, mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.catalog import CAPABILITIES, ModelSpec
from domain.errors import ConfigurationError
from domain.model_index import ModelIndex
from settings import load_settings
from settings.catalog import BUILTIN_COMPATIBLE, compatible_enabled, load_catalog


def vendors_enabled(environ: dict[str, str]) -> dict[str, bool]:
    settings = load_settings(environ)
    return {v.name: compatible_enabled(v) for v in settings.providers.compatible}


MODALITIES = frozenset({"text", "image", "video", "tts", "stt", "realtime", "embeddings"})


def _priced(spec: ModelSpec) -> bool:
    """Whether ``spec`` carries the price of each unit its modalities bill in."""
    needs = {
        "text": spec.input_price_per_mtok is not None,
        "embeddings": spec.input_price_per_mtok is not None,
        "image": spec.image_price is not None or bool(spec.image_prices),
        "tts": spec.character_price_per_m is not None,
        "stt": spec.audio_price_per_minute is not None,
        "realtime": spec.input_price_per_mtok is not None or spec.audio_price_per_minute is not None,
    }
    return all(ok for capability, ok in needs.items() if capability in spec.capabilities)


def test_builtin_catalog_is_consistent() -> None:
    """Every entry has known capabilities, fallbacks name real entries, and hosted models carry prices."""
    specs = load_catalog()
    index = ModelIndex.of(specs)
    providers = {s.provider for s in specs}
    assert {"fake", "openai", "anthropic", "gemini", "groq", "perplexity", "deepseek", "xai", "mistral"} <= providers
    assert {"openrouter", "together", "ollama", "vllm"} <= providers
    for spec in specs:
        assert spec.capabilities <= CAPABILITIES
        assert spec.capabilities & MODALITIES, spec.qualified_id  # every entry serves at least one modality
        for fallback in spec.fallbacks:
            assert index.find(fallback) is not None, (spec.qualified_id, fallback)
        if spec.provider not in ("fake", "ollama", "vllm"):
            assert _priced(spec), spec.qualified_id
    assert all(s.api in ("chat", "responses") for s in specs if s.provider == "openai" and "text" in s.capabilities)


def test_fake_models_are_there() -> None:
    """The deterministic models the embedded default and tests rely on are in the catalog."""
    ids = {s.qualified_id for s in load_catalog()}
    assert {"fake/echo", "fake/fixed", "fake/slow", "fake/failing", "fake/tools", "fake/reasoning"} <= ids


def test_user_file_overrides_and_extends(tmp_path: Path) -> None:
    """An entry with the same provider/id replaces the built-in one; new entries are added."""
    user = tmp_path / "models.toml"
    user.write_text(
        '[[models]]\nid = "echo"\nprovider = "fake"\ncapabilities = ["text"]\ninput_price_per_mtok = 9.0\n\n'
        '[[models]]\nid = "mine"\nprovider = "fake"\ncapabilities = ["text", "tools"]\naliases = ["my-model"]\n'
    )
    specs = {s.qualified_id: s for s in load_catalog(user)}
    assert specs["fake/echo"].input_price_per_mtok == 9.0
    assert specs["fake/echo"].capabilities == frozenset({"text"})
    assert specs["fake/mine"].aliases == ("my-model",)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('[[models]]\nid = "x"\nprovider = "fake"\ncapabilities = ["text", "telepathy"]\n', "telepathy"),
        ('[[models]]\nid = "x"\nprovider = "fake"\ncapabilities = ["text"]\ncontext_window = "big"\n', "context"),
        ('[[models]]\nid = "x"\nprovider = "fake"\ncapabilities = ["text"]\ncolour = "red"\n', "colour"),
        ('[[models]]\nid = "x"\nprovider = "fake"\ncapabilities = ["text"]\napi = "soap"\n', "soap"),
    ],
)
def test_mistakes_name_the_file_and_the_entry(tmp_path: Path, content: str, fragment: str) -> None:
    """A bad entry is a ConfigurationError naming the file, the entry index and id, and the problem."""
    user = tmp_path / "bad.toml"
    user.write_text(content)
    with pytest.raises(ConfigurationError) as caught:
        load_catalog(user)
    assert str(user) in caught.value.key
    assert "models[0] (fake/x)" in caught.value.key
    assert fragment in caught.value.message


def test_missing_or_broken_file_is_named(tmp_path: Path) -> None:
    """A missing or non-TOML catalog file is a ConfigurationError naming the setting."""
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_catalog(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[models]\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_catalog(broken)


def test_duplicate_alias_across_entries_is_refused(tmp_path: Path) -> None:
    """Two entries claiming one alias is a configuration error naming both."""
    user = tmp_path / "dup.toml"
    user.write_text('[[models]]\nid = "other"\nprovider = "fake"\ncapabilities = ["text"]\naliases = ["echo"]\n')
    with pytest.raises(ConfigurationError, match="fake/echo"):
        load_catalog(user)


def test_compatible_vendors_are_enabled_by_their_key_or_base_url() -> None:
    """Hosted vendors need their key variable; local servers only their base URL; none by default."""
    assert not any(vendors_enabled({}).values())
    enabled = vendors_enabled(
        {"DEEPSEEK_API_KEY": "sk-d", "XAI_API_KEY": "xai-1", "OLLAMA_BASE_URL": "http://127.0.0.1:11434/v1"}
    )
    assert {name for name, on in enabled.items() if on} == {"deepseek", "xai", "ollama"}
    assert {v.name for v in BUILTIN_COMPATIBLE} >= {"groq", "perplexity", "mistral", "openrouter", "together", "vllm"}


def test_legacy_settings_keys_and_base_url_variables_apply() -> None:
    """SWITCHYARD_PROVIDERS_GROQ_API_KEY enables groq; GROQ_BASE_URL points it elsewhere; keys stay masked."""
    settings = load_settings(
        {"SWITCHYARD_PROVIDERS_GROQ_API_KEY": "gsk-secret", "GROQ_BASE_URL": "http://127.0.0.1:9/v1"}
    )
    groq = next(v for v in settings.providers.compatible if v.name == "groq")
    assert compatible_enabled(groq)
    assert groq.base_url == "http://127.0.0.1:9/v1"
    assert "gsk-secret" not in repr(settings)


def test_a_new_vendor_is_a_settings_entry(tmp_path: Path) -> None:
    """[[providers.compatible]] in the config file adds a vendor whose models join the catalog."""
    config = tmp_path / "switchyard.toml"
    config.write_text(
        "[[providers.compatible]]\n"
        'name = "fireworks"\nbase_url = "https://api.fireworks.ai/inference/v1"\n'
        'api_key_env = "FIREWORKS_API_KEY"\nmodels = ["llama-v3p1-8b"]\ncapabilities = ["text", "tools"]\n'
    )
    settings = load_settings({"SWITCHYARD_CONFIG": str(config), "FIREWORKS_API_KEY": "fw-1"})
    fireworks = next(v for v in settings.providers.compatible if v.name == "fireworks")
    assert compatible_enabled(fireworks)
    assert any(v.name == "groq" for v in settings.providers.compatible)  # built-ins are kept
    spec = ModelIndex.of(load_catalog(vendors=settings.providers.compatible)).resolve("fireworks/llama-v3p1-8b")
    assert spec.capabilities == frozenset({"text", "tools"})


def test_a_bad_vendor_entry_names_the_setting(tmp_path: Path) -> None:
    """A misspelt key in [[providers.compatible]] stops loading with the setting named."""
    config = tmp_path / "switchyard.toml"
    config.write_text('[[providers.compatible]]\nname = "x"\nbase_uri = "http://h"\n')
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"SWITCHYARD_CONFIG": str(config)})
    assert "base_uri" in caught.value.message
