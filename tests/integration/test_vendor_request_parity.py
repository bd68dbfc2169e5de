"""Integration tests: the OpenAI and Anthropic text adapters send the request the SDKs' own ``create`` sends.

The adapters call the SDK client's ``post`` (``adapters.openai.client.post``, ``adapters.anthropic.client.post``) to
skip ``create``'s typed-params transform and response models. These tests pin that the vendor sees no difference:
for the same body, the emulator records the same JSON and the same headers (auth included: the emulator refuses a
request without it, and drops the key from its log) from the adapter as from ``create`` (called as the adapters
called it before: what its signature lacks, such as Anthropic's ``temperature``, in ``extra_body``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from anthropic import AsyncAnthropic
from openai import AsyncOpenAI
from openai._utils import async_transform
from openai.types.chat import completion_create_params
from openai.types.responses import response_create_params

from adapters.anthropic.client import anthropic_client
from adapters.anthropic.messages import messages_params
from adapters.anthropic.text import AnthropicTextProvider
from adapters.kit.stream import split_known
from adapters.openai.chat_completions import chat_params
from adapters.openai.client import openai_client
from adapters.openai.responses import responses_params
from adapters.openai.text import OpenAITextProvider
from domain.catalog import ModelSpec
from domain.chat import ChatRequest
from tests.emulator import RunningEmulator
from tests.emulator.app import RecordedRequest
from tests.integration.test_text_adapters import conversation, spec

#: Headers that differ between two calls by design: a fresh idempotency key per request.
_PER_CALL = frozenset(("idempotency-key", "x-stainless-idempotency-key"))


def _openai(emulator: RunningEmulator) -> AsyncOpenAI:
    """A client as the adapters' factory builds it (aiohttp transport, retries off, the configured timeouts)."""
    return openai_client(api_key="sk-test", base_url=emulator.openai_base_url, timeout_s=10.0, connect_timeout_s=2.0)


def _anthropic(emulator: RunningEmulator) -> AsyncAnthropic:
    return anthropic_client(api_key="k", base_url=emulator.anthropic_base_url, timeout_s=10.0, connect_timeout_s=2.0)


def _same_request(sdk: RecordedRequest, ours: RecordedRequest) -> None:
    assert ours.path == sdk.path
    assert ours.body == sdk.body
    assert {k: v for k, v in ours.headers.items() if k not in _PER_CALL} == {
        k: v for k, v in sdk.headers.items() if k not in _PER_CALL
    }


async def _recorded(emulator: RunningEmulator, api: str, call: Callable[[], Awaitable[Any]]) -> RecordedRequest:
    await call()
    return emulator.state.last(api)


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_openai_adapter_sends_what_create_sends(emulator: RunningEmulator, api: str, stream: bool) -> None:
    """Chat Completions and Responses, streamed and whole: same path, JSON body and headers as ``create``."""
    client, provider = _openai(emulator), OpenAITextProvider(_openai(emulator))
    request, model = conversation(), spec("text", "openai", api=api)
    create: Callable[..., Awaitable[Any]]
    if api == "chat":
        params, recorded_as = chat_params(request, model, provider="openai", stream=stream), "openai_chat"
        create = client.chat.completions.create
    else:
        params, recorded_as = responses_params(request, model, stream=stream), "openai_responses"
        create = client.responses.create

    async def sdk() -> None:
        reply = await create(**split_known(create, params))
        if stream:
            await _drain(reply)

    async def ours() -> None:
        if stream:
            await _drain(provider.stream(request, model))
        else:
            await provider.complete(request, model)

    try:
        _same_request(await _recorded(emulator, recorded_as, sdk), await _recorded(emulator, recorded_as, ours))
    finally:
        await client.close()
        await provider.aclose()


@pytest.mark.parametrize("stream", [True, False])
async def test_anthropic_adapter_sends_what_create_sends(emulator: RunningEmulator, stream: bool) -> None:
    """Messages, streamed and whole: same path, JSON body and headers (``x-api-key``, ``anthropic-version`` ...)."""
    client, provider = _anthropic(emulator), AnthropicTextProvider(_anthropic(emulator))
    request, model = conversation(), spec("text", "anthropic")
    params = messages_params(request, model, stream=stream)

    async def sdk() -> None:
        create = client.messages.create
        reply = await create(**split_known(create, params))
        if stream:
            await _drain(reply)

    async def ours() -> None:
        if stream:
            await _drain(provider.stream(request, model))
        else:
            await provider.complete(request, model)

    try:
        _same_request(await _recorded(emulator, "anthropic", sdk), await _recorded(emulator, "anthropic", ours))
    finally:
        await client.close()
        await provider.aclose()


def _requests() -> list[tuple[ChatRequest, ModelSpec]]:
    plain = conversation(tools=[], tool_choice=None, response_format=None, stop=[])
    return [(conversation(), spec("text", "openai")), (plain, spec("text", "openai", default_params={"seed": 7}))]


@pytest.mark.parametrize("stream", [True, False])
async def test_the_sdk_params_transform_changes_nothing_in_our_bodies(stream: bool) -> None:
    """What ``post`` skips, ``create``'s typed-params transform (key aliases, date and file formats), is the identity
    on the bodies the adapters build (every feature: system, images, tool calls and results, tools, tool choice,
    JSON schema): the day an SDK release starts rewriting one of our keys, this fails. (Anthropic's
    ``messages.create`` sends its body untransformed.)"""
    chat_type = (
        completion_create_params.CompletionCreateParamsStreaming
        if stream
        else completion_create_params.CompletionCreateParamsNonStreaming
    )
    responses_type = (
        response_create_params.ResponseCreateParamsStreaming
        if stream
        else response_create_params.ResponseCreateParamsNonStreaming
    )
    for request, model in _requests():
        chat = chat_params(request, model, provider="openai", stream=stream)
        assert await async_transform(chat, chat_type) == chat
        responses = responses_params(request, model, stream=stream)
        assert await async_transform(responses, responses_type) == responses
