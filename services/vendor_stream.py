"""Service helpers the text-provider adapters share: driving a normalized vendor stream with one error mapping, and
vendor-neutral error text helpers (a client-safe reason, the exceptions a malformed chunk raises, Retry-After).

Each vendor adapter keeps what is vendor-specific (its SDK call, its stream normalizer, its exception mapping) and
hands the rest here, so the loop that turns a vendor stream into ``ProviderEvent``s is written once. This module
imports no SDK, framework or settings: only the standard library, domain and ports.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any, Protocol

from domain.chat import ProviderEvent
from domain.errors import ProviderError, ProviderTimeoutError, ServiceError

__all__ = [
    "KEYLIKE",
    "MALFORMED",
    "MAX_REASON",
    "StreamNormalizer",
    "drive",
    "generic_failure",
    "retry_after_seconds",
    "safe_reason",
    "split_known",
]

#: Tokens that look like a credential: a known key prefix (OpenAI and compatibles, Groq, Perplexity, xAI, Anthropic,
#: Google) followed by 12+ key characters, or any 40+ character run of them.
KEYLIKE = re.compile(r"\b(?:sk|pk|rk|gsk|pplx|xai|ant|key|AIza)[-_A-Za-z0-9]{12,}|\b[A-Za-z0-9_\-]{40,}")
#: The longest vendor reason passed on to a client.
MAX_REASON = 300
#: A chunk that is not JSON (``json.JSONDecodeError``) or not the shape the SDK's models expect.
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


async def _close(stream: Any) -> None:
    """The SDKs' ``AsyncStream.close`` (OpenAI, Anthropic), else an async generator's ``aclose`` (google-genai)."""
    close = getattr(stream, "close", None)
    await (close() if close is not None else stream.aclose())


def generic_failure(
    provider: str,
    exc: BaseException,
    *,
    timeouts: tuple[type[BaseException], ...],
    unreachable: tuple[type[BaseException], ...],
) -> ProviderError:
    """What every vendor's error mapping ends with, once its own error reports are handled: a timeout, a vendor
    that could not be reached (retryable), a malformed chunk (retryable), else a failed call (not retryable).
    ``timeouts`` is checked first because a transport's timeout is usually also one of its ``unreachable`` errors."""
    if isinstance(exc, timeouts):
        return ProviderTimeoutError(provider, original_error=exc)
    if isinstance(exc, unreachable):
        return ProviderError(provider, f"could not reach {provider}", original_error=exc, retryable=True)
    if isinstance(exc, MALFORMED):  # a chunk that is not JSON, or not the expected shape
        return ProviderError(provider, f"{provider} sent a malformed chunk", original_error=exc, retryable=True)
    return ProviderError(provider, f"{provider} call failed", original_error=exc, retryable=False)


def safe_reason(message: object, fallback: str = "the provider rejected the request") -> str:
    """A vendor message fit for a client: key-like tokens masked, length capped."""
    if not isinstance(message, str) or not message.strip():
        return fallback
    cleaned = KEYLIKE.sub("[redacted]", message.strip())
    return cleaned if len(cleaned) <= MAX_REASON else cleaned[: MAX_REASON - 1] + "…"


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait: ``retry-after-ms`` (OpenAI, Anthropic) wins over ``retry-after`` in seconds; a value that is
    not a number (an HTTP date included) is ignored, a negative one is 0."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) / scale)
        except ValueError:
            continue
    return None


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
