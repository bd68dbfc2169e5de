"""Driven adapter: OpenAI (Chat Completions and Responses) implementation of the ``TextProvider`` port.

The same class serves the whole OpenAI-compatible family (Groq, Perplexity, DeepSeek, xAI, Mistral, OpenRouter,
Together, Ollama, vLLM ...) by base URL, key and provider name alone; those speak Chat Completions only, so
``model.api == "responses"`` is honoured for any name but only OpenAI offers it. One attempt per call: the SDK's own
retries are off (``max_retries=0``) because the chat service retries with its own deadline and backoff. ``complete``
calls either API without streaming (one JSON body instead of a chunk per token). Requests go through the SDK client's
``post`` (``adapters.openai.client.post``): the SDK's request, auth, errors and SSE reader, without its per-call
params transform and response models.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import httpx2
import openai
from openai import AsyncOpenAI

from adapters.kit.stream import MALFORMED, call_once, drive
from adapters.openai.chat_completions import ChatStreamNormalizer, chat_completion, chat_params
from adapters.openai.client import openai_client, post
from adapters.openai.errors import TRANSPORT_ERRORS, map_openai_error
from adapters.openai.responses import ResponsesAnswer, ResponsesStreamNormalizer, responses_params
from domain.catalog import ModelSpec
from domain.chat import ChatRequest, ProviderEvent
from domain.completion import Completion

__all__ = ["OpenAITextProvider", "build_openai_text_provider"]

#: What may escape the SDK during a call: its own errors, transport errors it did not wrap, and a chunk that is
#: not JSON (``json.JSONDecodeError`` is a ``ValueError``).
_VENDOR_FAILURES: tuple[type[Exception], ...] = (openai.OpenAIError, *TRANSPORT_ERRORS, *MALFORMED)
_CHAT, _RESPONSES = "/chat/completions", "/responses"


class OpenAITextProvider:
    """``TextProvider`` over one ``AsyncOpenAI`` client (created once, closed by ``aclose``)."""

    def __init__(self, client: AsyncOpenAI, *, name: str = "openai") -> None:
        self._client = client
        self._name = name
        self._drive = partial(drive, provider=name, map_error=map_openai_error, vendor_failures=_VENDOR_FAILURES)
        self._call = partial(call_once, provider=name, map_error=map_openai_error, vendor_failures=_VENDOR_FAILURES)

    @property
    def name(self) -> str:
        """The provider id in the catalog (``openai``, ``groq`` ...)."""
        return self._name

    def stream(self, request: ChatRequest, model: ModelSpec) -> AsyncIterator[ProviderEvent]:
        """One streamed attempt, through the API the catalog chose for ``model``."""
        if model.api == "responses":
            return self._stream_responses(request, model)
        return self._stream_chat(request, model)

    def _stream_chat(self, request: ChatRequest, model: ModelSpec) -> AsyncIterator[ProviderEvent]:
        return self._drive(
            lambda: post(self._client, _CHAT, chat_params(request, model, provider=self._name), stream=True),
            ChatStreamNormalizer(),
            unfinished_message=f"{self._name} ended the stream without a finish reason",
        )

    def _stream_responses(self, request: ChatRequest, model: ModelSpec) -> AsyncIterator[ProviderEvent]:
        return self._drive(
            lambda: post(self._client, _RESPONSES, responses_params(request, model), stream=True),
            ResponsesStreamNormalizer(self._name),
            unfinished_message=f"{self._name} ended the stream before completing",
        )

    async def complete(self, request: ChatRequest, model: ModelSpec, *, timeout_s: float | None = None) -> Completion:
        """One attempt without streaming, through the API the catalog chose for ``model``."""
        timeout = None if timeout_s is None else httpx2.Timeout(timeout_s, connect=self._connect_s())
        if model.api == "responses":
            body = responses_params(request, model, stream=False)
            return await self._call(
                lambda: post(self._client, _RESPONSES, body, stream=False, timeout=timeout), ResponsesAnswer(self._name)
            )
        params = chat_params(request, model, provider=self._name, stream=False)
        return await self._call(
            lambda: post(self._client, _CHAT, params, stream=False, timeout=timeout), chat_completion
        )

    def _connect_s(self) -> float | None:
        configured = self._client.timeout
        return configured.connect if isinstance(configured, httpx2.Timeout) else None

    async def aclose(self) -> None:
        """Close the SDK client and its connection pool."""
        await self._client.close()


def build_openai_text_provider(
    *, name: str, api_key: str, base_url: str | None, timeout_s: float, connect_timeout_s: float
) -> OpenAITextProvider:
    """The container's factory: one client for ``name`` at ``base_url`` (OpenAI's own when ``None``)."""
    client = openai_client(api_key=api_key, base_url=base_url, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s)
    return OpenAITextProvider(client, name=name)
