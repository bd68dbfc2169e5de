"""Driven-adapter kit: the loop that turns a vendor stream into ``ProviderEvent``s, its one-shot counterpart (a
whole answer from a call made without streaming), reading vendor JSON as the SDKs parsed it, and SDK keyword
splitting.

Each vendor adapter keeps what is vendor-specific (its SDK call, its stream normalizer or answer parser, its
exception mapping) and hands the rest here, so the loop is written once for every vendor and modality.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from domain.chat import ProviderEvent
from domain.completion import Completion, CompletionAssembler
from domain.errors import ProviderError, ServiceError

__all__ = ["MALFORMED", "StreamNormalizer", "assemble", "call_once", "dig", "drive", "json_body", "split_known"]

T = TypeVar("T")

#: A chunk that is not JSON (``json.JSONDecodeError``) or not the shape its normalizer expects.
MALFORMED: tuple[type[Exception], ...] = (ValueError, TypeError, AttributeError, LookupError)


class StreamNormalizer(Protocol):
    """Turns one vendor's raw stream items into normalized events; ``finish`` once ``finished``."""

    @property
    def finished(self) -> bool:
        """The vendor's terminator (a finish reason, ``message_stop`` ...) arrived."""
        ...

    def feed(self, event: Any) -> Iterable[ProviderEvent]:
        """Events for one raw stream item (may raise a domain error the vendor reported in-stream)."""
        ...

    def finish(self) -> Iterable[ProviderEvent]:
        """The closing events (usage, then the one ``Finish``)."""
        ...


async def drive(
    open_stream: Callable[[], Awaitable[Any]],
    normalizer: StreamNormalizer,
    *,
    provider: str,
    map_error: Callable[[str, BaseException], ServiceError],
    vendor_failures: tuple[type[Exception], ...],
    unfinished_message: str,
) -> AsyncGenerator[ProviderEvent, None]:
    """One streamed attempt: open the vendor stream, feed each item through ``normalizer``, and end with its
    ``finish()`` events. Nothing happens until the first item is asked for.

    ``open_stream()`` builds the request and returns the SDK call unawaited: building is our own code, so its errors
    (a ``ValidationError`` for a bad image part ...) pass unmapped. A ``vendor_failures`` exception while awaiting
    that call, reading the stream or normalizing an item becomes ``map_error(provider, exc)``; a stream that ends
    without the terminator is a retryable ``ProviderError``. The vendor stream is closed however the attempt ends,
    the consumer's ``aclose`` included."""
    opening = open_stream()
    try:
        stream = await opening
        try:
            async for item in stream:
                for event in normalizer.feed(item):
                    yield event
        finally:
            await _close(stream)
    except vendor_failures as exc:
        raise map_error(provider, exc) from exc
    if not normalizer.finished:
        raise ProviderError(provider, unfinished_message, retryable=True)
    for event in normalizer.finish():
        yield event


async def call_once(
    call: Callable[[], Awaitable[T]],
    parse: Callable[[T], Completion],
    *,
    provider: str,
    map_error: Callable[[str, BaseException], ServiceError],
    vendor_failures: tuple[type[Exception], ...],
) -> Completion:
    """One non-streamed attempt, ``drive``'s counterpart: ``call()`` builds the request and returns the SDK call
    unawaited (building errors pass unmapped, as in ``drive``); a ``vendor_failures`` exception while awaiting it or
    while ``parse`` reads the reply (a body that is not the shape ``parse`` expects) becomes
    ``map_error(provider, exc)``, so a fault maps to the same domain error as when streamed."""
    calling = call()
    try:
        return parse(await calling)
    except vendor_failures as exc:
        raise map_error(provider, exc) from exc


async def assemble(events: AsyncIterator[ProviderEvent]) -> Completion:
    """A whole stream added up (for a vendor that must stream even when nobody reads the answer as it grows); the
    stream is closed however it ends."""
    assembler = CompletionAssembler()
    try:
        async for event in events:
            assembler.feed(event)
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
    return assembler.completion()


def json_body(reply: object) -> Any:
    """A whole answer fetched with the SDKs' ``cast_to=object``: the JSON the SDK parsed, or, when the vendor's
    content type did not say JSON, the text it handed back instead, parsed here (the SDK parses a body meant for a
    model whatever its content type; text that is not JSON raises ``ValueError``, a ``MALFORMED`` reply)."""
    return json.loads(reply) if isinstance(reply, str) else reply


def dig(value: object, *keys: str) -> Any:
    """``value[k1][k2]...`` through JSON objects, ``None`` where a key is missing or a level is not an object: the
    tolerance the SDKs' loosely built models gave optional details (``getattr(details, "cached_tokens", None)``)."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


async def _close(stream: Any) -> None:
    """The SDKs' ``AsyncStream.close`` (OpenAI, Anthropic), else an async generator's ``aclose`` (google-genai)."""
    close = getattr(stream, "close", None)
    await (close() if close is not None else stream.aclose())


def split_known(create: Callable[..., Any], params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as keyword arguments of an SDK ``create``: what its signature lacks (a parameter the SDK version no
    longer lists, such as Anthropic's ``temperature``, or a compatible server's extension) travels in ``extra_body``
    so it still reaches the wire."""
    method = getattr(create, "__func__", None)  # an SDK resource's bound ``create``: a new object at every access
    known = _parameter_names(create, bound=False) if method is None else _parameter_names(method, bound=True)
    kwargs = {k: v for k, v in params.items() if k in known}
    extra = {k: v for k, v in params.items() if k not in known}
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


@lru_cache(maxsize=64)
def _parameter_names(function: Callable[..., Any], *, bound: bool) -> frozenset[str]:
    """A callable's parameter names (after ``self`` for a method's function), once per function: the signature of an
    SDK ``create`` takes ~50 us to build on every request otherwise, and it never changes."""
    names = list(inspect.signature(function).parameters)
    return frozenset(names[1:] if bound else names)
