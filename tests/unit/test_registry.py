"""Registry resolution: qualified ids, aliases, bare ids, case, disabled vendors, suggestions and capabilities."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.catalog import ModelSpec
from domain.chat import ChatRequest, Message, Usage
from domain.chat_rules import prepare_request
from domain.errors import CapabilityError, NotFoundError
from domain.model_index import ModelIndex
from domain.pricing import cost_usd
from services.registry import ProviderRegistry
from tests.fakes.providers import text_vendors
from tests.fakes.text import ScriptedTextProvider

CATALOG = [
    ModelSpec("gpt-4o", "openai", frozenset({"text", "vision", "tools"}), aliases=("omni",)),
    ModelSpec("llama-3.3-70b", "groq", frozenset({"text"})),
    ModelSpec("llama-3.3-70b", "together", frozenset({"text", "tools"})),
    ModelSpec("meta-llama/Llama-3.3-70B-Instruct", "together", frozenset({"text"})),
    ModelSpec("claude-sonnet-4-5", "anthropic", frozenset({"text", "tools"}), aliases=("claude-sonnet",)),
]


def registry(*enabled: str) -> ProviderRegistry:
    return ProviderRegistry(CATALOG, text_vendors({name: ScriptedTextProvider(name=name) for name in enabled}))


def test_resolves_qualified_alias_and_bare_ids() -> None:
    """provider/model, an alias and a bare id all land on the same entry."""
    r = registry("openai", "groq", "together")
    assert r.resolve("openai/gpt-4o").qualified_id == "openai/gpt-4o"
    assert r.resolve("omni").qualified_id == "openai/gpt-4o"
    assert r.resolve("gpt-4o").qualified_id == "openai/gpt-4o"
    assert r.resolve("GPT-4O").qualified_id == "openai/gpt-4o"


def test_bare_id_served_by_two_vendors_takes_the_first_enabled_in_catalog_order() -> None:
    """A bare id shared by vendors resolves to the first enabled one; disabling it moves to the next."""
    assert registry("groq", "together").resolve("llama-3.3-70b").provider == "groq"
    assert registry("together").resolve("llama-3.3-70b").provider == "together"


def test_model_ids_may_contain_slashes() -> None:
    """``together/meta-llama/...`` splits on nothing: the qualified id is matched whole."""
    r = registry("together")
    assert r.resolve("together/meta-llama/Llama-3.3-70B-Instruct").id == "meta-llama/Llama-3.3-70B-Instruct"
    assert r.resolve("meta-llama/Llama-3.3-70B-Instruct").provider == "together"


def test_unknown_name_suggests_the_closest_enabled_ids() -> None:
    """A typo is a 404 that names the closest ids."""
    with pytest.raises(NotFoundError) as caught:
        registry("openai").resolve("gpt-4")
    assert caught.value.context["suggestions"] == ["openai/gpt-4o"]
    assert "did you mean 'openai/gpt-4o'" in caught.value.message


def test_disabled_vendor_is_named_instead_of_unknown() -> None:
    """A catalogued model of an unconfigured vendor says which vendor is off."""
    with pytest.raises(NotFoundError) as caught:
        registry("openai").resolve("claude-sonnet")
    assert caught.value.context["reason"] == "provider_disabled"
    assert "'anthropic'" in caught.value.message


def test_missing_capability_names_model_capability_and_alternatives() -> None:
    """CapabilityError names both and lists models that have the capability."""
    with pytest.raises(CapabilityError) as caught:
        registry("groq", "openai").resolve("groq/llama-3.3-70b", capabilities=["text", "tools"])
    assert (caught.value.model, caught.value.capability) == ("groq/llama-3.3-70b", "tools")
    assert "openai/gpt-4o" in caught.value.message


def test_only_enabled_models_are_listed() -> None:
    """Listing shows only registered vendors' models, filterable by capability."""
    r = registry("openai", "together")
    assert [s.qualified_id for s in r.models()] == [
        "openai/gpt-4o",
        "together/llama-3.3-70b",
        "together/meta-llama/Llama-3.3-70B-Instruct",
    ]
    assert [s.qualified_id for s in r.models("vision")] == ["openai/gpt-4o"]


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(CATALOG), st.booleans())
def test_every_enabled_entry_resolves_to_itself_by_qualified_id(spec: ModelSpec, upper: bool) -> None:
    """Qualified ids always resolve to their own entry, in any letter case when unambiguous."""
    index = ModelIndex.of(CATALOG)
    name = spec.qualified_id.upper() if upper else spec.qualified_id
    assert index.resolve(name).qualified_id == spec.qualified_id


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_resolution_either_finds_an_entry_or_raises_not_found(name: str) -> None:
    """Any string resolves or raises NotFoundError, never anything else; suggestions are real ids."""
    index = ModelIndex.of(CATALOG)
    if index.find(name) is not None:
        assert index.resolve(name) is index.find(name)
        return
    with pytest.raises(NotFoundError) as caught:
        index.resolve(name)
    assert set(caught.value.context["suggestions"]) <= {s.qualified_id for s in CATALOG}


def test_prepare_request_drops_defaults_and_caps() -> None:
    """Unsupported params are dropped and reported, defaults fill gaps, max_tokens is capped at the model's limit."""
    spec = ModelSpec(
        "r1",
        "x",
        frozenset({"text"}),
        max_output_tokens=100,
        unsupported_params=frozenset({"temperature", "stop"}),
        default_params={"top_p": 0.9, "temperature": 0.1},
    )
    request = ChatRequest("x/r1", [Message("user", "hi")], temperature=0.5, stop=["\n"], max_tokens=500)
    prepared = prepare_request(request, spec)
    assert prepared.dropped == ("stop", "temperature")
    assert (prepared.request.temperature, prepared.request.stop) == (None, [])
    assert prepared.request.top_p == 0.9
    assert prepared.request.max_tokens == 100


def test_cost_uses_catalog_prices_per_million_tokens() -> None:
    """Cost is tokens times price per million; no prices means no cost."""
    spec = ModelSpec("m", "x", frozenset({"text"}), input_price_per_mtok=3.0, output_price_per_mtok=15.0)
    assert cost_usd(Usage(1_000_000, 100_000).units(), spec) == pytest.approx(4.5)
    assert cost_usd(Usage(10, 10).units(), ModelSpec("m", "x", frozenset({"text"}))) is None
