"""EmbeddingService: the request's rules, splitting and in-order reassembly, retries and fallbacks through the attempt
runner without ever mixing two models' vectors, and one usage record per attempt."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from adapters.fake.embeddings import FakeEmbeddingProvider, fake_vector
from domain.catalog import ModelSpec
from domain.embeddings import EmbeddingRequest, EmbeddingResult
from domain.errors import CapabilityError, NotFoundError, ProviderError, ServiceError, ValidationError
from domain.types import CustomerId
from ports.embeddings import EMBEDDING_PORT, EmbeddingProvider
from services.attempts import AttemptRunner, Caller, RetryPolicy
from services.embeddings import EmbeddingService
from services.registry import ProviderRegistry
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.providers import vendors_with
from tests.fakes.usage import InMemoryUsageLedger

CALLER = Caller(CustomerId("alice"), "req-1")
TEXTS = ["one", "two words", "three little words", "four", "five and more"]


def embedding_spec(model_id: str, provider: str = "alpha", **kwargs: Any) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider=provider,
        capabilities=frozenset({"embeddings"}),
        embedding_dimensions=kwargs.pop("embedding_dimensions", 32),
        adjustable_dimensions=kwargs.pop("adjustable_dimensions", True),
        **kwargs,
    )


class Flaky:
    """Wraps a provider: raises the scripted error on the given call numbers (1-based); ``delays`` pace each call,
    so later chunks can finish before earlier ones."""

    def __init__(
        self,
        inner: FakeEmbeddingProvider,
        failures: dict[int, ServiceError] | None = None,
        delays: Sequence[float] = (),
    ) -> None:
        self.inner = inner
        self.failures = failures or {}
        self.delays = list(delays)
        self.calls = 0
        self.finished: list[tuple[str, ...]] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def max_batch(self) -> int:
        return self.inner.max_batch

    async def embed(self, inputs: Sequence[str], model: ModelSpec, *, dimensions: int | None) -> EmbeddingResult:
        self.calls += 1
        call = self.calls
        if call <= len(self.delays):
            await asyncio.sleep(self.delays[call - 1])
        if call in self.failures:
            raise self.failures[call]
        result = await self.inner.embed(inputs, model, dimensions=dimensions)
        self.finished.append(tuple(inputs))
        return result


class Harness:
    def __init__(self, providers: dict[str, EmbeddingProvider], catalog: Sequence[ModelSpec]) -> None:
        self.usage = InMemoryUsageLedger()
        self.metrics = RecordingMetrics()
        self.sleeps: list[float] = []
        registry = ProviderRegistry(catalog, vendors_with(EMBEDDING_PORT, providers))
        runner = AttemptRunner(registry, self.usage, self.metrics, RetryPolicy(max_retries=2), sleep=self._sleep)
        self.service = EmbeddingService(runner)

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def embed(self, model: str, texts: str | list[str], dimensions: int | None = None) -> Any:
        return await self.service.embed(EmbeddingRequest(model, texts, dimensions), CALLER)


def _vectors(texts: Sequence[str], spec: ModelSpec, dimensions: int | None = None) -> list[list[float]]:
    return [list(fake_vector(text, spec, dimensions)) for text in texts]


async def test_large_batches_are_split_and_reassembled_in_input_order() -> None:
    """Five texts over a provider taking two per call: three calls, and the vectors in input order even when the
    later chunks finish first."""
    spec = embedding_spec("embed", input_price_per_mtok=0.5)
    provider = Flaky(FakeEmbeddingProvider(name="alpha", max_batch=2), delays=[0.03, 0.02, 0.0])
    harness = Harness({"alpha": provider}, [spec])
    result = await harness.embed("alpha/embed", TEXTS)
    assert provider.finished == [("five and more",), ("three little words", "four"), ("one", "two words")]
    assert result.response.embeddings == _vectors(TEXTS, spec)
    assert result.response.model == "alpha/embed"
    assert result.response.dimensions == 32
    tokens = sum(len(t.split()) for t in TEXTS)
    assert result.response.usage.input_tokens == tokens
    assert result.response.usage.cost_usd == pytest.approx(tokens * 0.5e-6)
    [record] = harness.usage.records
    assert (record.capability, record.outcome, record.input_tokens) == ("embeddings", "done", tokens)
    assert result.meta["fallback_used"] is None


async def test_a_single_string_is_a_batch_of_one_and_dimensions_shorten_it() -> None:
    """``input`` may be one string; ``dimensions`` gives vectors of that length."""
    spec = embedding_spec("embed")
    harness = Harness({"alpha": FakeEmbeddingProvider(name="alpha")}, [spec])
    result = await harness.embed("embed", "hello world", dimensions=8)
    assert result.response.embeddings == _vectors(["hello world"], spec, 8)
    assert result.response.dimensions == 8


async def test_rate_limit_then_success_is_retried_with_retry_after() -> None:
    """A 429 with Retry-After is retried after that delay; the answer is whole, each attempt leaves a record."""
    params = {"fake_error": "rate_limited", "fake_fail_times": 1, "fake_retry_after": 1.5, "fake_key": "once"}
    spec = embedding_spec("embed", default_params=params)
    harness = Harness({"alpha": FakeEmbeddingProvider(name="alpha", max_batch=2)}, [spec])
    result = await harness.embed("embed", TEXTS)
    assert result.response.embeddings == _vectors(TEXTS, spec)
    assert harness.sleeps == [1.5]
    assert result.meta["retries"] == 1
    assert [r.outcome for r in harness.usage.records] == ["rate_limited", "done"]


async def test_a_fallback_re_embeds_everything_and_never_mixes_models() -> None:
    """When the primary fails on its second chunk (its first chunk already embedded), the fallback embeds every
    input again: all vectors are the fallback model's, none the primary's."""
    primary = embedding_spec("primary", fallbacks=("beta/backup",))
    backup = embedding_spec("backup", provider="beta")
    failing = Flaky(FakeEmbeddingProvider(name="alpha", max_batch=2), {2: ProviderError("alpha", "broken")})
    backup_provider = FakeEmbeddingProvider(name="beta", max_batch=2)
    harness = Harness({"alpha": failing, "beta": backup_provider}, [primary, backup])
    result = await harness.embed("alpha/primary", TEXTS)
    assert failing.finished  # the primary did embed a chunk before failing
    assert result.response.embeddings == _vectors(TEXTS, backup)
    assert not any(vector in _vectors(TEXTS, primary) for vector in result.response.embeddings)
    assert result.response.model == "beta/backup"
    assert result.meta["fallback_used"] == "beta/backup"
    assert backup_provider.batches == [2, 2, 1]
    assert [(r.model, r.outcome) for r in harness.usage.records] == [
        ("alpha/primary", "provider_error"),
        ("beta/backup", "done"),
    ]


async def test_an_attempt_failing_on_a_later_chunk_is_billed_its_embedded_chunks() -> None:
    """The only model fails on its second chunk: the request fails, but the chunks the vendor did embed (and charged
    for: the first, and the third, already under way) are in the attempt's usage record, priced, and in the token
    metrics."""
    spec = embedding_spec("embed", input_price_per_mtok=0.5)
    failing = Flaky(FakeEmbeddingProvider(name="alpha", max_batch=2), {2: ProviderError("alpha", "broken")})
    harness = Harness({"alpha": failing}, [spec])
    with pytest.raises(ProviderError):
        await harness.embed("alpha/embed", TEXTS)
    assert ("one", "two words") in failing.finished
    assert ("three little words", "four") not in failing.finished
    tokens = sum(len(text.split()) for chunk in failing.finished for text in chunk)
    [record] = harness.usage.records
    assert (record.outcome, record.input_tokens, record.estimated) == ("provider_error", tokens, False)
    assert record.cost_usd == pytest.approx(tokens * 0.5e-6)
    labels = (("kind", "input"), ("model", "alpha/embed"), ("provider", "alpha"))
    assert harness.metrics.counters[("tokens_total", labels)] == tokens


async def test_a_retry_after_a_failed_chunk_bills_both_attempts_what_they_embedded() -> None:
    """A retryable failure on the third chunk, then a whole retry: the first attempt is billed its two embedded
    chunks, the second every text; the answer reports only the serving attempt's tokens."""
    spec = embedding_spec("embed")
    failing = Flaky(
        FakeEmbeddingProvider(name="alpha", max_batch=2), {3: ProviderError("alpha", "hiccup", retryable=True)}
    )
    harness = Harness({"alpha": failing}, [spec])
    result = await harness.embed("alpha/embed", TEXTS)
    tokens = sum(len(t.split()) for t in TEXTS)
    assert result.response.usage.input_tokens == tokens
    first_two = sum(len(t.split()) for t in TEXTS[:4])
    assert [(r.outcome, r.input_tokens) for r in harness.usage.records] == [
        ("provider_error", first_two),
        ("done", tokens),
    ]


class Guessing(FakeEmbeddingProvider):
    """A vendor that reports no usage: its units are estimates (as Gemini's API mode)."""

    async def embed(self, inputs: Sequence[str], model: ModelSpec, *, dimensions: int | None) -> EmbeddingResult:
        result = await super().embed(inputs, model, dimensions=dimensions)
        return EmbeddingResult(result.vectors, result.units, estimated=True)


async def test_chunks_whose_units_are_guesses_are_recorded_as_estimated() -> None:
    """Split over several calls, a vendor's estimated units stay marked estimated in the record (and the request
    that fails part-way, too)."""
    spec = embedding_spec("embed")
    harness = Harness({"alpha": Guessing(name="alpha", max_batch=2)}, [spec])
    await harness.embed("alpha/embed", TEXTS)
    failing = Flaky(Guessing(name="alpha", max_batch=2), {2: ProviderError("alpha", "broken")})
    broken = Harness({"alpha": failing}, [spec])
    with pytest.raises(ProviderError):
        await broken.embed("alpha/embed", TEXTS)
    assert [(r.outcome, r.estimated) for r in harness.usage.records + broken.usage.records] == [
        ("done", True),
        ("provider_error", True),
    ]


async def test_fallbacks_that_cannot_give_the_dimensions_are_skipped() -> None:
    """With ``dimensions``, a fallback of fixed length is no fallback: the primary's error is the answer."""
    primary = embedding_spec("primary", fallbacks=("beta/fixed",))
    fixed = embedding_spec("fixed", provider="beta", adjustable_dimensions=False)
    failing = Flaky(FakeEmbeddingProvider(name="alpha"), {1: ProviderError("alpha", "broken")})
    harness = Harness({"alpha": failing, "beta": FakeEmbeddingProvider(name="beta")}, [primary, fixed])
    with pytest.raises(ProviderError):
        await harness.embed("primary", TEXTS, dimensions=8)
    assert [r.model for r in harness.usage.records] == ["alpha/primary"]


async def test_a_vendor_request_complaint_names_input() -> None:
    """A vendor's 400 (which the error mappers file under ``request``) reaches the caller as a problem of ``input``."""
    spec = embedding_spec("embed")
    refusal = ValidationError("request", "an input is too long", context={"provider": "alpha"})
    harness = Harness({"alpha": Flaky(FakeEmbeddingProvider(name="alpha"), {1: refusal})}, [spec])
    with pytest.raises(ValidationError) as caught:
        await harness.embed("embed", TEXTS)
    assert caught.value.field == "input"
    assert caught.value.reason == "an input is too long"


@pytest.mark.parametrize(
    ("model", "texts", "dimensions", "field"),
    [
        ("", ["a"], None, "model"),
        ("embed", [], None, "input"),
        ("embed", "  ", None, "input"),
        ("embed", ["fine", ""], None, "input[1]"),
        ("embed", ["fine", "also fine", " \n"], None, "input[2]"),
        ("embed", ["fine", "lone \ud800 surrogate"], None, "input[1]"),
        ("embed", ["x"] * 2049, None, "input"),
        ("embed", ["x" * 600_000, "y" * 400_001], None, "input"),
        ("embed", ["a"], 0, "dimensions"),
        ("embed", ["a"], 33, "dimensions"),
        ("fixed", ["a"], 8, "dimensions"),
    ],
)
async def test_invalid_requests_name_the_field(
    model: str, texts: str | list[str], dimensions: int | None, field: str
) -> None:
    """Each rule breaks with a ``ValidationError`` naming the field (``input[i]`` for the i-th text), before any
    provider call."""
    provider = FakeEmbeddingProvider(name="alpha")
    catalog = [embedding_spec("embed"), embedding_spec("fixed", adjustable_dimensions=False)]
    harness = Harness({"alpha": provider}, catalog)
    with pytest.raises(ValidationError) as caught:
        await harness.embed(model, texts, dimensions)
    assert caught.value.field == field
    assert provider.calls == 0
    assert harness.usage.records == []


async def test_unknown_and_unfit_models_are_refused() -> None:
    """An unknown model is a 404; a model without the ``embeddings`` capability is a 422 naming it."""
    chat = ModelSpec(id="chat", provider="alpha", capabilities=frozenset({"text"}))
    harness = Harness({"alpha": FakeEmbeddingProvider(name="alpha")}, [embedding_spec("embed"), chat])
    with pytest.raises(NotFoundError):
        await harness.embed("nope", ["a"])
    with pytest.raises(CapabilityError) as caught:
        await harness.embed("alpha/chat", ["a"])
    assert caught.value.model == "alpha/chat"
