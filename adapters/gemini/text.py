"""Driven adapter: Google Gemini (google-genai ``client.aio``) implementation of the ``TextProvider`` port.

Gemini sends each function call whole, so one call yields start, one argument delta (its ``args`` as JSON) and end
together; a call without a vendor ``id`` gets ``call_<index>``. Thought parts become ``ReasoningDelta``. Usage is
normalized (output includes thinking tokens). ``complete`` calls ``generate_content``, whose reply has the shape of
one stream chunk, so the same normalizer reads it. One attempt per call: ``HttpRetryOptions(attempts=1)`` also turns off
the SDK's implicit reconnect loop on the aiohttp transport.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Iterator
from functools import partial
from typing import Any

import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from adapters.gemini.contents import generation_config, to_contents
from adapters.gemini.errors import map_gemini_error
from adapters.kit.stream import MALFORMED, call_once, drive
from domain.catalog import ModelSpec
from domain.chat import (
    ChatRequest,
    Finish,
    FinishReason,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
)
from domain.completion import Completion
from domain.errors import ProviderError

__all__ = ["GeminiStreamNormalizer", "GeminiTextProvider", "build_gemini_text_provider"]

_VENDOR_FAILURES: tuple[type[Exception], ...] = (genai_errors.APIError, httpx2.HTTPError, TimeoutError, *MALFORMED)
_FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}


class GeminiStreamNormalizer:
    """Feed ``GenerateContentResponse`` chunks in order with ``feed``; call ``finish`` once ``finished``."""

    def __init__(self) -> None:
        self._calls = 0
        self._usage: Usage | None = None
        self._finish: str | None = None

    @property
    def finished(self) -> bool:
        """A finish reason (or a prompt block) arrived."""
        return self._finish is not None

    def feed(self, chunk: types.GenerateContentResponse) -> Iterator[ProviderEvent]:
        """Events for one chunk."""
        if chunk.usage_metadata is not None:
            self._usage = _usage(chunk.usage_metadata)
        feedback = chunk.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            self._finish = "SAFETY"
        for candidate in (chunk.candidates or [])[:1]:
            parts = candidate.content.parts if candidate.content is not None else None
            for part in parts or ():
                yield from self._part(part)
            if candidate.finish_reason is not None:
                reason: Any = candidate.finish_reason
                self._finish = str(getattr(reason, "value", reason))

    def _part(self, part: types.Part) -> Iterator[ProviderEvent]:
        if part.function_call is not None:
            call = part.function_call
            index = self._calls
            self._calls += 1
            call_id = call.id or f"call_{index}"
            yield ToolCallStart(index, call_id, call.name or "")
            yield ToolCallDelta(index, call_id, json.dumps(call.args or {}))
            yield ToolCallEnd(index, call_id)
        elif part.text:
            yield ReasoningDelta(part.text) if part.thought else TextDelta(part.text)

    def finish(self) -> Iterator[ProviderEvent]:
        """Usage, then the one ``Finish``."""
        if self._usage is not None:
            yield UsageReport(self._usage)
        reason = _FINISH.get(self._finish or "STOP", "stop")
        yield Finish("tool_calls" if self._calls and reason == "stop" else reason)


def _usage(raw: types.GenerateContentResponseUsageMetadata) -> Usage:
    thoughts = raw.thoughts_token_count or 0
    return Usage(
        input_tokens=raw.prompt_token_count or 0,
        output_tokens=(raw.candidates_token_count or 0) + thoughts,
        cached_tokens=raw.cached_content_token_count or 0,
        reasoning_tokens=thoughts,
    )


class GeminiTextProvider:
    """``TextProvider`` over one ``genai.Client`` (its ``aio`` side; created once, closed by ``aclose``)."""

    def __init__(self, client: genai.Client, *, name: str = "gemini") -> None:
        self._client = client
        self._name = name
        self._drive = partial(drive, provider=name, map_error=map_gemini_error, vendor_failures=_VENDOR_FAILURES)
        self._call = partial(call_once, provider=name, map_error=map_gemini_error, vendor_failures=_VENDOR_FAILURES)

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    def stream(self, request: ChatRequest, model: ModelSpec) -> AsyncIterator[ProviderEvent]:
        """One streamed attempt of ``request`` against ``model``."""
        return self._drive(
            lambda: self._open(request, model),
            GeminiStreamNormalizer(),
            unfinished_message=f"{self._name} ended the stream without a finish reason",
        )

    def _open(self, request: ChatRequest, model: ModelSpec) -> Awaitable[AsyncIterator[types.GenerateContentResponse]]:
        contents: Any = to_contents(request.messages)
        config = generation_config(request, model)
        return self._client.aio.models.generate_content_stream(model=model.wire_name, contents=contents, config=config)

    async def complete(self, request: ChatRequest, model: ModelSpec, *, timeout_s: float | None = None) -> Completion:
        """One attempt without streaming (``generate_content``)."""
        contents: Any = to_contents(request.messages)
        config = generation_config(request, model)
        if timeout_s is not None:  # per call, over the client's options (milliseconds, as the client's own)
            config.http_options = types.HttpOptions(timeout=max(1, round(timeout_s * 1000)))
        generate = self._client.aio.models.generate_content
        return await self._call(lambda: generate(model=model.wire_name, contents=contents, config=config), self._read)

    def _read(self, reply: types.GenerateContentResponse) -> Completion:
        normalizer = GeminiStreamNormalizer()
        events = list(normalizer.feed(reply))
        if not normalizer.finished:  # as a stream that ends without a finish reason
            raise ProviderError(self._name, f"{self._name} answered without a finish reason", retryable=True)
        return Completion.of([*events, *normalizer.finish()])

    async def aclose(self) -> None:
        """Close the SDK's async transport."""
        await self._client.aio.aclose()


def build_gemini_text_provider(
    *,
    name: str,
    api_key: str,
    base_url: str | None,
    timeout_s: float,
    connect_timeout_s: float,
    api_version: str = "v1beta",
) -> GeminiTextProvider:
    """The text port alone (contract tests). google-genai takes one timeout, in milliseconds, for every phase of a
    request, so ``connect_timeout_s`` cannot be applied separately; the overall ``timeout_s`` bounds the connect as
    well. ``api_version``: the path's version segment (``v1beta`` by default, as ``vendor.py`` explains)."""
    del connect_timeout_s  # see the docstring: the SDK has a single timeout
    options = types.HttpOptions(
        base_url=base_url,
        api_version=api_version,
        timeout=max(1, round(timeout_s * 1000)),
        retry_options=types.HttpRetryOptions(attempts=1),
        async_client_args={"transport": httpx2.AsyncHTTPTransport()},  # httpx2, not aiohttp: see vendor.py
    )
    return GeminiTextProvider(genai.Client(api_key=api_key, http_options=options), name=name)
