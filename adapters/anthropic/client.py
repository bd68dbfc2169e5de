"""Driven adapter (Anthropic): the one ``AsyncAnthropic`` client the vendor's ports share, on the SDK's aiohttp
transport.

The SDK's ``DefaultAioHttpClient`` (the ``anthropic[aiohttp]`` extra) costs about a quarter less client CPU per call
than its default httpx2 transport, streamed or not (measured against the vendor emulator; see the README). Its
connections are pooled per client: up to 1,000, each idle one kept 5 s (httpx2's keep-alive expiry, which the
transport hands to aiohttp; it has no count of idle connections to keep, so ``max_keepalive_connections`` is moot).
The aiohttp transport reports a refused or dropped connection as ``httpx2.ConnectTimeout``;
``adapters.kit.errors.generic_failure`` reads the cause, so the domain error is the one the httpx2 transport gives
(``could not reach``, not ``provider_timeout``).

``post`` makes the request ``messages.create`` makes, through the same client: the SDK builds it (URL, auth, version
and ``x-stainless`` headers), sends it, raises its own ``APIStatusError`` family for a non-2xx answer and for an
``event: error`` inside a stream, and reads the stream with its own SSE decoder (``ping`` skipped). What it skips is
the SDK building a pydantic model of the answer, or validating one per stream event, that the adapter only reads
back: with ``cast_to=object`` the SDK hands back the JSON objects it parsed (a quarter less client CPU for a whole
answer, half for a stream; ``python -m benchmarks.bench_adapters``). ``create``'s other per-call work is moot here:
its deprecated-model warnings, its own non-streaming timeout (the client's timeout is always set; a call long enough
to need a stream is streamed by the adapter), and its OpenTelemetry call span, which a call ``create`` did not make
does not get (this service configures no OpenTelemetry; its logs and metrics say what a call did).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, Final

import httpx2
from anthropic import AsyncAnthropic, AsyncStream, DefaultAioHttpClient, RequestOptions

__all__ = ["MESSAGES", "POOL", "anthropic_client", "post"]

POOL: Final = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)
MESSAGES: Final = "/v1/messages"
#: The SDK's own stream class, its items left as the JSON objects its SSE decoder parsed.
_EVENTS: Final = AsyncStream[object]


def anthropic_client(
    *, api_key: str, base_url: str | None, timeout_s: float, connect_timeout_s: float
) -> AsyncAnthropic:
    """A client for ``base_url`` (Anthropic's own when ``None``), with the SDK's own retries off: the attempt runner
    retries with its own deadline and backoff."""
    timeout = httpx2.Timeout(timeout_s, connect=connect_timeout_s)
    return AsyncAnthropic(
        api_key=api_key,
        base_url=base_url,
        timeout=timeout,
        max_retries=0,
        http_client=DefaultAioHttpClient(timeout=timeout, limits=POOL),
    )


def post(
    client: AsyncAnthropic, path: str, body: Mapping[str, Any], *, stream: bool, timeout: httpx2.Timeout | None = None
) -> Awaitable[Any]:
    """``POST path`` with the JSON ``body`` as ``create`` would send it (unawaited): a JSON object back, or with
    ``stream`` the SDK's ``AsyncStream`` of JSON objects. ``timeout`` bounds this call instead of the client's."""
    options: RequestOptions = {} if timeout is None else {"timeout": timeout}
    return client.post(path, cast_to=object, body=body, options=options, stream=stream, stream_cls=_EVENTS)
