"""Use case: embeddings. Validate the request, then one run of the attempt runner whose every attempt embeds the
whole request with one model.

A batch larger than the provider's ``max_batch`` is split into chunks, embedded a few chunks at a time, and
reassembled in input order inside one attempt, so a retry or a fallback re-embeds everything with its model and no
answer ever mixes two models' vectors (they live in different spaces). Retries, fallbacks, the silence bound and the
usage record of each attempt (capability ``embeddings``, input tokens, cost) are the runner's. Each chunk that
embedded adds its tokens to the attempt's meter as it ends: an attempt that fails on a later chunk (or is cancelled)
is still billed the chunks the vendor answered, though none of their vectors is used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

from attrs import frozen

from domain.catalog import ModelSpec
from domain.embeddings import EmbeddingRequest, EmbeddingResponse, EmbeddingResult, EmbeddingUsage
from domain.errors import ProviderError, ServiceError, ValidationError
from domain.metering import Units
from domain.types import JsonValue
from ports.embeddings import EMBEDDING_PORT, EmbeddingProvider
from services.attempts import AttemptRunner, Caller, Candidates, Meter
from services.quota_estimates import text_units
from services.quotas import QuotaGate

__all__ = ["MAX_INPUTS", "MAX_TOTAL_CHARACTERS", "Embedded", "EmbeddingService", "embed_in_chunks"]

MAX_INPUTS: Final = 2048
"""Most texts in one request (OpenAI's own per-call limit; larger sets belong in several requests)."""
MAX_TOTAL_CHARACTERS: Final = 1_000_000
"""Most characters over all texts of one request (about OpenAI's 300k-token cap per request)."""
CHUNK_CONCURRENCY: Final = 4
"""Chunks of one attempt in flight at once: enough to hide latency, few enough not to trip a vendor's rate limit."""
_CAPABILITY: Final = "embeddings"


@frozen
class Embedded:
    """The answer and the ``meta`` saying who served it."""

    response: EmbeddingResponse
    meta: dict[str, JsonValue]


async def embed_in_chunks(
    provider: EmbeddingProvider,
    spec: ModelSpec,
    inputs: Sequence[str],
    dimensions: int | None,
    *,
    concurrency: int = CHUNK_CONCURRENCY,
    meter: Meter | None = None,
) -> EmbeddingResult:
    """Every input embedded by ``spec`` in chunks of ``provider.max_batch``, at most ``concurrency`` chunks at a
    time, reassembled in input order with their units summed. The first failing chunk fails the whole (the others
    are cancelled): one attempt, one model, all or nothing. Each chunk that embedded adds its units to ``meter``
    as it ends (what the vendor charges for, whatever becomes of the rest)."""
    meter = meter or Meter()
    size = max(1, provider.max_batch)
    chunks = [inputs[start : start + size] for start in range(0, len(inputs), size)]
    gate = asyncio.Semaphore(concurrency)

    async def one(chunk: Sequence[str]) -> EmbeddingResult:
        async with gate:
            result = await provider.embed(chunk, spec, dimensions=dimensions)
        meter.add(result.units, estimated=result.estimated)
        return result

    if len(chunks) == 1:
        return await one(chunks[0])

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(chunk)) for chunk in chunks]
    except BaseExceptionGroup as grouped:
        raise _first_error(grouped) from None
    results = [task.result() for task in tasks]
    vectors = tuple(vector for result in results for vector in result.vectors)
    estimated = any(result.estimated for result in results)  # one guessed chunk makes the total a guess
    return EmbeddingResult(vectors, sum((result.units for result in results), Units()), estimated)


def _first_error(grouped: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report for a failed chunk: the first domain error, else the first of any kind."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [grouped]
    while pending:
        current = pending.pop(0)
        if isinstance(current, BaseExceptionGroup):
            pending[:0] = list(current.exceptions)
        else:
            leaves.append(current)
    return next((e for e in leaves if isinstance(e, ServiceError)), leaves[0])


class EmbeddingService:
    """``embed``: the request's rules, the candidates fit for its ``dimensions``, and one runner call."""

    def __init__(
        self,
        runner: AttemptRunner,
        *,
        max_inputs: int = MAX_INPUTS,
        max_total_characters: int = MAX_TOTAL_CHARACTERS,
        chunk_concurrency: int = CHUNK_CONCURRENCY,
        quotas: QuotaGate | None = None,
    ) -> None:
        self.runner = runner
        self._quotas = quotas or QuotaGate.unlimited()
        self._max_inputs = max_inputs
        self._max_characters = max_total_characters
        self._concurrency = chunk_concurrency

    def plan(self, request: EmbeddingRequest) -> Candidates:
        """The models to try for a valid ``request`` (``ValidationError`` naming the field otherwise)."""
        if not request.model.strip():
            raise ValidationError("model", "must not be empty")
        self._check_inputs(request)
        candidates = self.runner.candidates(request.model, capabilities=[_CAPABILITY])
        if request.dimensions is None:
            return candidates
        _check_dimensions(request.dimensions, candidates.primary)
        # A fallback that cannot give vectors of this length is no fallback for this request.
        fit = tuple(spec for spec in candidates.models if _dimensions_problem(request.dimensions, spec) is None)
        return Candidates(candidates.capability, fit)

    async def embed(self, request: EmbeddingRequest, caller: Caller) -> Embedded:
        """One vector per input, in input order, all from the one model that served."""
        candidates = self.plan(request)
        inputs = request.inputs

        async def invoke(provider: EmbeddingProvider, spec: ModelSpec, meter: Meter) -> EmbeddingResult:
            result = await embed_in_chunks(
                provider, spec, inputs, request.dimensions, concurrency=self._concurrency, meter=meter
            )
            if len(result.vectors) != len(inputs):
                raise ProviderError(
                    spec.provider,
                    f"{spec.provider} answered {len(result.vectors)} vectors for {len(inputs)} inputs",
                    retryable=True,
                )
            return result

        # 403 a model the caller's key may not use, 429 over a limit: before any vendor call (issue 18).
        admission = await self._quotas.admit(caller, candidates, lambda _: text_units(inputs))
        try:
            async with admission:
                served = await self.runner.call_metered(
                    admission.candidates,
                    caller,
                    EMBEDDING_PORT,
                    invoke,
                    units=lambda r: r.units,
                    estimated=lambda r: r.estimated,
                )
        except ValidationError as exc:
            about_input = _about_input(exc)
            if about_input is exc:
                raise
            raise about_input from exc
        vectors = served.value.vectors
        response = EmbeddingResponse(
            model=served.model.qualified_id,
            embeddings=[list(vector) for vector in vectors],
            dimensions=len(vectors[0]),
            usage=EmbeddingUsage(input_tokens=served.units.input_tokens, cost_usd=served.cost_usd),
        )
        return Embedded(response, served.meta())

    def _check_inputs(self, request: EmbeddingRequest) -> None:
        inputs = request.inputs
        if not inputs:
            raise ValidationError("input", "must hold at least one text")
        if len(inputs) > self._max_inputs:
            raise ValidationError(
                "input",
                f"at most {self._max_inputs} texts per request, got {len(inputs)}",
                context={"limit": self._max_inputs},
            )
        single = isinstance(request.input, str)
        for index, text in enumerate(inputs):
            if not text.strip():
                raise ValidationError("input" if single else f"input[{index}]", "must not be empty or blank")
            if not _utf8(text):
                raise ValidationError(
                    "input" if single else f"input[{index}]", "must be valid Unicode (it holds a lone surrogate)"
                )
        total = sum(len(text) for text in inputs)
        if total > self._max_characters:
            raise ValidationError(
                "input",
                f"at most {self._max_characters} characters per request over all texts, got {total}",
                context={"limit": self._max_characters},
            )


def _utf8(text: str) -> bool:
    """Whether ``text`` can be sent at all: JSON lets a lone surrogate (``\\ud800``) through, UTF-8 cannot carry it."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _dimensions_problem(dimensions: int, spec: ModelSpec) -> str | None:
    if dimensions < 1:
        return "must be at least 1"
    if not spec.adjustable_dimensions:
        length = f" ({spec.embedding_dimensions})" if spec.embedding_dimensions else ""
        return f"model {spec.qualified_id!r} gives vectors of a fixed length{length}; leave dimensions out"
    if spec.embedding_dimensions is not None and dimensions > spec.embedding_dimensions:
        return f"model {spec.qualified_id!r} gives at most {spec.embedding_dimensions} dimensions"
    return None


def _check_dimensions(dimensions: int, spec: ModelSpec) -> None:
    problem = _dimensions_problem(dimensions, spec)
    if problem is not None:
        raise ValidationError("dimensions", problem, context={"model": spec.qualified_id})


def _about_input(error: ValidationError) -> ValidationError:
    """A vendor's complaint about an embeddings request is about its ``input`` (the vendor error mappers name
    ``messages`` or ``request``, the fields of a chat)."""
    if type(error) is ValidationError and error.field in ("messages", "request"):
        return ValidationError("input", error.reason, context=error.context | {"field": "input"})
    return error
