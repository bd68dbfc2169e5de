"""Driven adapter (OpenAI): the one ``AsyncOpenAI`` client a vendor's ports share, on the SDK's aiohttp transport.

The SDK's ``DefaultAioHttpClient`` (the ``openai[aiohttp]`` extra) costs about a quarter less client CPU per call
than its default httpx2 transport, streamed or not (measured against the vendor emulator; see the README). Its
connections are pooled per client: up to 1,000, each idle one kept 5 s (httpx2's keep-alive expiry, which the
transport hands to aiohttp; it has no count of idle connections to keep, so ``max_keepalive_connections`` is moot).
The aiohttp transport reports a refused or dropped connection as ``httpx2.ConnectTimeout``;
``adapters.kit.errors.generic_failure`` reads the cause, so the domain error is the one the httpx2 transport gives
(``could not reach``, not ``provider_timeout``).

``post`` makes the request a resource's ``create`` makes, through the same client: the SDK builds it (URL, auth and
``x-stainless`` headers, idempotency key, timeout), sends it, raises its own ``APIStatusError`` family for a non-2xx
answer and its ``APIError`` for an ``{"error": ...}`` object inside a stream, and reads the stream with its own SSE
decoder. What it skips is the per-call cost around that, which was most of the client CPU of a call (measured with
``python -m benchmarks.bench_adapters``): ``create`` walks our already-JSON body through the typed-params transform
(a quarter of a non-streamed call), and the SDK builds a pydantic model of the answer, or one per chunk of a stream
(two thirds of a streamed call), that the adapter only reads back. With ``cast_to=object`` the SDK hands back the
JSON objects it parsed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, Final

import httpx2
from openai import AsyncOpenAI, AsyncStream, DefaultAioHttpClient, RequestOptions

__all__ = ["POOL", "openai_client", "post"]

POOL: Final = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)
#: The SDK's own stream class, its items left as the JSON objects its SSE decoder parsed.
_EVENTS: Final = AsyncStream[object]
#: The auth a model API's ``create`` asks for (the API key as a bearer token).
_BEARER: Final[RequestOptions] = {"security": {"bearer_auth": True}}


def openai_client(*, api_key: str, base_url: str | None, timeout_s: float, connect_timeout_s: float) -> AsyncOpenAI:
    """A client for ``base_url`` (OpenAI's own when ``None``), with the SDK's own retries off: the attempt runner
    retries with its own deadline and backoff."""
    timeout = httpx2.Timeout(timeout_s, connect=connect_timeout_s)
    return AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        timeout=timeout,
        max_retries=0,
        http_client=DefaultAioHttpClient(timeout=timeout, limits=POOL),
    )


def post(
    client: AsyncOpenAI, path: str, body: Mapping[str, Any], *, stream: bool, timeout: httpx2.Timeout | None = None
) -> Awaitable[Any]:
    """``POST path`` with the JSON ``body`` as ``create`` would send it (unawaited): a JSON object back, or with
    ``stream`` the SDK's ``AsyncStream`` of JSON objects. ``timeout`` bounds this call instead of the client's."""
    options: RequestOptions = _BEARER if timeout is None else {**_BEARER, "timeout": timeout}
    return client.post(path, cast_to=object, body=body, options=options, stream=stream, stream_cls=_EVENTS)
