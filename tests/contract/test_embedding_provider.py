"""The EmbeddingProvider contract: one set of scenarios run against the ``fake`` provider and every adapter through
its real SDK at the vendor emulator (OpenAI, an OpenAI-compatible vendor by base URL, Gemini), so vectors, order,
``dimensions``, usage and the domain errors of every fault cannot drift apart.

"Exact" targets must reproduce the emulator's vectors value for value (base64 decoding and JSON floats alike); the
fake is held to the same properties (order, length, unit norm, determinism, errors) with its own vectors.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from attrs import field, frozen
from google import genai
from google.genai import types
from openai import AsyncOpenAI

from adapters.fake.embeddings import FakeEmbeddingProvider
from adapters.gemini.embeddings import GeminiEmbeddingProvider, estimated_tokens
from adapters.gemini.vendor import DEFAULT_API_VERSION as GEMINI_API_VERSION
from adapters.openai.embeddings import OpenAIEmbeddingProvider
from domain.catalog import ModelSpec
from domain.errors import ProviderError, RateLimitError, ServiceError, ValidationError
from ports.embeddings import EmbeddingProvider
from tests.emulator import Fault, RunningEmulator, Scenario
from tests.emulator.embeddings import DEFAULT_LENGTH, emulated_tokens, emulated_vector
from tests.emulator.wire import LEAKY_KEY

TEXTS = ["the quick brown fox", "jumps over", "the lazy dog"]
Built = tuple[EmbeddingProvider, Callable[[], Awaitable[None]]]


def _words(texts: list[str]) -> int:
    return sum(max(1, len(text.split())) for text in texts)


async def _nothing() -> None:
    return None


def _openai(emulator: RunningEmulator, name: str) -> Built:
    client = AsyncOpenAI(api_key="sk-test-key", base_url=emulator.openai_base_url, max_retries=0, timeout=10.0)
    return OpenAIEmbeddingProvider(client, name=name), client.close


def _gemini(emulator: RunningEmulator, name: str) -> Built:
    options = types.HttpOptions(
        base_url=emulator.gemini_base_url,
        api_version=GEMINI_API_VERSION,
        timeout=10_000,
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    client = genai.Client(api_key="test-key", http_options=options)
    return GeminiEmbeddingProvider(client, name=name), client.aio.aclose


def _fake(_emulator: RunningEmulator, name: str) -> Built:
    return FakeEmbeddingProvider(name=name), _nothing


#: scenario -> the fake's default_params playing it
FAKE_PARAMS: dict[str, dict[str, Any]] = {
    "text": {},
    "fault-401": {"fake_error": "auth"},
    "fault-429": {"fake_error": "rate_limited", "fake_retry_after": 2},
    "fault-500": {"fake_error": "overloaded"},
    "fault-malformed": {"fake_error": "overloaded"},
}


@frozen
class Target:
    """One provider under contract: how to build it and what its usage should say."""

    name: str
    provider: str
    build: Callable[[RunningEmulator, str], Built]
    tokens: Callable[[list[str]], int]
    exact: bool = True
    max_batch: int = 0
    default_params: dict[str, Any] = field(factory=dict)

    def model(self, scenario: str, *, wire: str | None = None, **params: Any) -> ModelSpec:
        """The catalog entry for ``scenario``: its name (or ``wire``) as the vendor model, or the fake's
        parameters playing it."""
        extra = FAKE_PARAMS[scenario] if not self.exact else {}
        return ModelSpec(
            id=f"embed-{scenario}",
            provider=self.provider,
            vendor_model=wire or scenario,
            capabilities=frozenset({"embeddings"}),
            embedding_dimensions=None if self.exact else 32,
            adjustable_dimensions=True,
            default_params=self.default_params | extra | params,
        )


TARGETS = [
    Target("openai", "openai", _openai, emulated_tokens, max_batch=2048),
    Target(
        "mistral_float",
        "mistral",
        _openai,
        emulated_tokens,
        max_batch=2048,
        default_params={"encoding_format": "float"},
    ),
    Target("gemini", "gemini", _gemini, estimated_tokens, max_batch=100),
    Target("fake", "fake", _fake, _words, exact=False, max_batch=16),
]


@pytest.fixture(params=TARGETS, ids=lambda t: t.name)
def target(request: pytest.FixtureRequest) -> Target:
    """Each provider under contract."""
    chosen: Target = request.param
    return chosen


@pytest.fixture
async def provider(target: Target, emulator: RunningEmulator) -> AsyncIterator[EmbeddingProvider]:
    """The target's provider; its SDK client closed after the test."""
    built, close = target.build(emulator, target.provider)
    yield built
    await close()


def _norm(vector: tuple[float, ...]) -> float:
    return math.sqrt(sum(v * v for v in vector))


async def _error(provider: EmbeddingProvider, texts: list[str], model: ModelSpec) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        await provider.embed(texts, model, dimensions=None)
    return caught.value


async def test_vectors_come_back_in_input_order(provider: EmbeddingProvider, target: Target) -> None:
    """One vector per input, in input order: each equals the vector of its text embedded alone (and, for vendors,
    the emulator's vector for that text, so base64 decoding and JSON floats are exact)."""
    model = target.model("text")
    result = await provider.embed(TEXTS, model, dimensions=None)
    assert len(result.vectors) == len(TEXTS)
    alone = [(await provider.embed([text], model, dimensions=None)).vectors[0] for text in TEXTS]
    assert list(result.vectors) == alone
    assert len(set(result.vectors)) == len(TEXTS)
    if target.exact:
        assert [list(v) for v in result.vectors] == [emulated_vector(t, DEFAULT_LENGTH) for t in TEXTS]
    for vector in result.vectors:
        assert _norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert provider.max_batch == target.max_batch
    assert provider.name == target.provider


async def test_dimensions_are_honoured(provider: EmbeddingProvider, target: Target) -> None:
    """``dimensions`` sets every vector's length; the shortened vectors are unit vectors still."""
    result = await provider.embed(TEXTS, target.model("text"), dimensions=8)
    assert [len(v) for v in result.vectors] == [8, 8, 8]
    for vector in result.vectors:
        assert _norm(vector) == pytest.approx(1.0, abs=1e-5)
    if target.exact:
        assert [list(v) for v in result.vectors] == [emulated_vector(t, 8) for t in TEXTS]


async def test_usage_counts_input_tokens(provider: EmbeddingProvider, target: Target) -> None:
    """The units are input tokens (as the vendor reports them, or the documented estimate where it reports none)."""
    result = await provider.embed(TEXTS, target.model("text"), dimensions=None)
    assert result.units.input_tokens == target.tokens(TEXTS) > 0
    assert result.units.output_tokens == 0
    # Only Gemini reports no tokens for embeddings: its count is the estimate, and says so.
    assert result.estimated is (target.name == "gemini")


async def test_rate_limit_carries_retry_after(target: Target, emulator: RunningEmulator) -> None:
    """A 429 becomes a ``RateLimitError`` with the vendor's Retry-After (header, or Gemini's RetryInfo)."""
    wire = emulator.state.add("embed-429-2s", Scenario(fault=Fault("rate_limited", retry_after_s=2)))
    provider, close = target.build(emulator, target.provider)
    try:
        error = await _error(provider, TEXTS, target.model("fault-429", wire=wire))
    finally:
        await close()
    assert type(error) is RateLimitError, repr(error)
    assert error.retryable is True
    assert error.retry_after == 2.0


async def test_rate_limit_then_success(target: Target, emulator: RunningEmulator) -> None:
    """After a 429 the same provider serves the next call (the retry belongs to the attempt runner)."""
    wire = emulator.state.script(
        f"embed-429-then-ok-{target.name}", Scenario(fault=Fault("rate_limited")), Scenario(text_chunks=("ok",))
    )
    params = {"fake_error": "rate_limited", "fake_fail_times": 1} if not target.exact else {}
    model = target.model("text", wire=wire, **params)
    provider, close = target.build(emulator, target.provider)
    try:
        assert isinstance(await _error(provider, TEXTS, model), RateLimitError)
        result = await provider.embed(TEXTS, model, dimensions=None)
    finally:
        await close()
    assert len(result.vectors) == len(TEXTS)


@pytest.mark.parametrize(
    ("scenario", "error_class", "retryable"),
    [
        ("fault-500", ProviderError, True),
        ("fault-malformed", ProviderError, True),
        ("fault-401", ProviderError, False),
    ],
)
async def test_faults_map_to_domain_errors(
    provider: EmbeddingProvider, target: Target, scenario: str, error_class: type[ServiceError], retryable: bool
) -> None:
    """A 500 or a body cut short is a retryable ``ProviderError``; refused credentials are not retryable, and the
    vendor's body (which quotes the key) never passes."""
    error = await _error(provider, TEXTS, target.model(scenario))
    assert type(error) is error_class, repr(error)
    assert error.retryable is retryable
    assert isinstance(error, ProviderError)
    assert error.provider == target.provider
    assert LEAKY_KEY not in f"{error} {error!r} {error.context}"


async def test_a_batch_over_the_vendor_limit_is_refused(provider: EmbeddingProvider, target: Target) -> None:
    """One input more than ``max_batch`` is refused as a request problem (the vendor's 400), not a vendor failure:
    splitting is the caller's job."""
    texts = [f"text {i}" for i in range(provider.max_batch + 1)]
    error = await _error(provider, texts, target.model("text"))
    assert type(error) is ValidationError, repr(error)
    assert error.retryable is False


async def test_openai_request_translation(emulator: RunningEmulator) -> None:
    """The OpenAI body: wire model name, the texts in order, ``dimensions``, and base64 left to the SDK to ask for
    (and decode); a compatible vendor configured for floats asks for ``float``."""
    target = TARGETS[0]
    provider, close = target.build(emulator, "openai")
    try:
        await provider.embed(TEXTS, target.model("text"), dimensions=8)
        body = emulator.state.last("openai_embeddings").body
        assert body == {"model": "text", "input": TEXTS, "dimensions": 8, "encoding_format": "base64"}
        await provider.embed(TEXTS[:1], target.model("text"), dimensions=None)
        assert "dimensions" not in emulator.state.last("openai_embeddings").body
        floats = target.model("text", encoding_format="float")
        await provider.embed(TEXTS[:1], floats, dimensions=None)
        assert emulator.state.last("openai_embeddings").body["encoding_format"] == "float"
    finally:
        await close()


async def test_gemini_request_translation(emulator: RunningEmulator) -> None:
    """The Gemini body: one ``requests[]`` entry per text, each naming ``models/<wire name>`` with its text part,
    ``outputDimensionality`` and the catalog's ``task_type``; also for a model the SDK deems multimodal (a name
    with "gemini"), where bare strings would be folded into one content and come back as one vector."""
    target = TARGETS[2]
    wire = emulator.state.add("gemini-embedding-2-preview", Scenario())
    provider, close = target.build(emulator, "gemini")
    try:
        model = target.model("text", wire=wire, task_type="RETRIEVAL_DOCUMENT")
        result = await provider.embed(TEXTS[:2], model, dimensions=8)
    finally:
        await close()
    assert len(result.vectors) == 2
    recorded = emulator.state.last("gemini_embeddings")
    assert recorded.model == wire
    assert recorded.body == {
        "requests": [
            {
                "content": {"parts": [{"text": text}], "role": "user"},
                "taskType": "RETRIEVAL_DOCUMENT",
                "outputDimensionality": 8,
                "model": f"models/{wire}",
            }
            for text in TEXTS[:2]
        ]
    }
    assert "x-goog-api-key" not in recorded.headers  # never recorded, though sent (else the emulator answers 401)


async def test_fake_is_deterministic_and_model_specific() -> None:
    """The fake gives the same text the same vector on every call and instance, and another model another vector;
    a ``[[fake ...]]`` marker in a text scripts a fault for that call."""
    first, second = FakeEmbeddingProvider(), FakeEmbeddingProvider()
    spec = ModelSpec(id="embed", provider="fake", capabilities=frozenset({"embeddings"}), embedding_dimensions=32)
    other = ModelSpec(id="embed-2", provider="fake", capabilities=frozenset({"embeddings"}), embedding_dimensions=32)
    a = await first.embed(["hello"], spec, dimensions=None)
    assert a == await second.embed(["hello"], spec, dimensions=None)
    assert a.vectors != (await first.embed(["hello"], other, dimensions=None)).vectors
    assert len(a.vectors[0]) == 32
    marker = "[[fake fake_error=rate_limited fake_retry_after=3]] hello"
    error = await _error(first, [marker], spec)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 3.0


# --- the emulator is as strict as the vendors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "headers", "body", "status"),
    [
        ("/v1/embeddings", {}, {"model": "text", "input": ["a"]}, 401),
        ("/v1/embeddings", {"authorization": "Bearer k"}, {"model": "text", "input": []}, 400),
        ("/v1/embeddings", {"authorization": "Bearer k"}, {"model": "text", "input": ["a", ""]}, 400),
        ("/v1/embeddings", {"authorization": "Bearer k"}, {"input": ["a"]}, 400),
        ("/v1/embeddings", {"authorization": "Bearer k"}, {"model": "text", "input": "a", "dimensions": 0}, 400),
        ("/v1/embeddings", {"authorization": "Bearer k"}, {"model": "unknown", "input": "a"}, 404),
        ("/v2/models/text:batchEmbedContents", {"x-goog-api-key": "k"}, {"requests": []}, 404),
        ("/v1beta/models/text:batchEmbedContents", {}, {"requests": []}, 401),
        ("/v1beta/models/text:batchEmbedContents", {"x-goog-api-key": "k"}, {"requests": []}, 400),
        (
            "/v1beta/models/text:batchEmbedContents",
            {"x-goog-api-key": "k"},
            {"requests": [{"model": "models/other", "content": {"parts": [{"text": "a"}]}}]},
            400,
        ),
        ("/v1/models/text:embedContent", {"x-goog-api-key": "k"}, {"content": {"parts": [{"text": "a"}]}}, 404),
    ],
)
async def test_the_emulator_refuses_what_the_vendor_refuses(
    emulator: RunningEmulator, path: str, headers: dict[str, str], body: dict[str, Any], status: int
) -> None:
    """Missing credentials, an unknown API version or method, empty or missing fields, a model that does not match
    the URL: each answered with the vendor's status, so an adapter that sends them fails here as it would live."""
    async with httpx.AsyncClient(base_url=emulator.root_url) as client:
        response = await client.post(path, json=body, headers=headers)
    assert response.status_code == status, response.text


async def test_the_emulator_answers_floats_or_base64_as_asked(emulator: RunningEmulator) -> None:
    """OpenAI's ``encoding_format``: a JSON list by default or for ``float``, little-endian float32 in base64 else."""
    headers = {"authorization": "Bearer k"}
    async with httpx.AsyncClient(base_url=emulator.root_url, headers=headers) as client:
        plain = (await client.post("/v1/embeddings", json={"model": "text", "input": "a", "dimensions": 4})).json()
        packed = (
            await client.post(
                "/v1/embeddings", json={"model": "text", "input": "a", "dimensions": 4, "encoding_format": "base64"}
            )
        ).json()
    assert plain["data"][0]["embedding"] == emulated_vector("a", 4)
    decoded = list(struct.unpack("<4f", base64.b64decode(packed["data"][0]["embedding"])))
    assert decoded == emulated_vector("a", 4)
    assert plain["usage"] == {"prompt_tokens": 1, "total_tokens": 1}
