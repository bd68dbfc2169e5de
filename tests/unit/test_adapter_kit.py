"""Unit tests of the adapter kit: the stream loop every vendor adapter shares, its status ladder, its error text."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from adapters.kit.errors import MAX_REASON, generic_failure, retry_after_seconds, safe_reason, status_error
from adapters.kit.stream import MALFORMED, drive
from domain.chat import Finish, ProviderEvent, TextDelta, Usage, UsageReport
from domain.errors import ProviderError, ProviderTimeoutError, RateLimitError, ServiceError, ValidationError


class _VendorFailure(Exception):
    """Stands for an SDK exception."""


class _Stream:
    """A vendor stream in the SDKs' ``AsyncStream`` style: iterable, closed with ``close()``."""

    def __init__(self, items: list[str], *, fail_after: int | None = None) -> None:
        self._items = items
        self._fail_after = fail_after
        self.closed = False

    async def _iterate(self) -> AsyncIterator[str]:
        for position, item in enumerate(self._items):
            if position == self._fail_after:
                raise _VendorFailure("connection reset")
            yield item

    def __aiter__(self) -> AsyncIterator[str]:
        return self._iterate()

    async def close(self) -> None:
        self.closed = True


class _Normalizer:
    """Text per item; the item ``"stop"`` is the terminator; ``finish`` reports usage, then ``Finish``."""

    def __init__(self) -> None:
        self.finished = False

    def feed(self, event: object) -> Iterator[ProviderEvent]:
        if event == "stop":
            self.finished = True
        elif event == "invalid":
            raise ValidationError("messages", "the vendor said the request was bad")
        else:
            yield TextDelta(str(event))

    def finish(self) -> Iterator[ProviderEvent]:
        yield UsageReport(Usage(input_tokens=1, output_tokens=2))
        yield Finish("stop")


class _Mapper:
    """A ``map_error`` that counts its calls."""

    def __init__(self) -> None:
        self.calls: list[BaseException] = []

    def __call__(self, provider: str, exc: BaseException) -> ServiceError:
        self.calls.append(exc)
        return ProviderError(provider, f"{provider} mapped {type(exc).__name__}", retryable=True)


def _opener(stream: _Stream) -> Callable[[], Awaitable[_Stream]]:
    async def opened() -> _Stream:
        return stream

    return opened


def _drive(
    source: _Stream | Callable[[], Awaitable[Any]], mapper: _Mapper | None = None
) -> AsyncGenerator[ProviderEvent, None]:
    """``drive`` over a vendor stream (or an ``open_stream`` callable) for the provider ``acme``."""
    return drive(
        _opener(source) if isinstance(source, _Stream) else source,
        _Normalizer(),
        provider="acme",
        map_error=mapper or _Mapper(),
        vendor_failures=(_VendorFailure, *MALFORMED),  # as the adapters do
        unfinished_message="acme ended the stream early",
    )


async def _until_error(events: AsyncIterator[ProviderEvent]) -> tuple[list[ProviderEvent], ServiceError]:
    """The events read before the stream raised, and the error it raised."""
    seen: list[ProviderEvent] = []
    try:
        async for event in events:
            seen.append(event)
    except ServiceError as exc:
        return seen, exc
    raise AssertionError(f"the stream ended without an error after {seen}")


async def test_events_pass_through_in_order_and_finish_events_come_last() -> None:
    """Normalized events come out in stream order, then the normalizer's finish() events, and the stream is closed."""
    stream = _Stream(["Hel", "lo", "stop"])
    events = [event async for event in _drive(stream)]
    assert events == [
        TextDelta("Hel"),
        TextDelta("lo"),
        UsageReport(Usage(input_tokens=1, output_tokens=2)),
        Finish("stop"),
    ]
    assert stream.closed


async def test_a_vendor_failure_is_mapped_once_and_the_stream_closed() -> None:
    """A vendor exception mid-stream reaches the caller as the mapped domain error (one map_error call), after the
    events before it, and the vendor stream is closed."""
    stream = _Stream(["Hel", "lo", "stop"], fail_after=1)
    mapper = _Mapper()
    seen, error = await _until_error(_drive(stream, mapper))
    assert seen == [TextDelta("Hel")]
    assert str(error) == "acme mapped _VendorFailure"
    assert len(mapper.calls) == 1
    assert isinstance(error.__cause__, _VendorFailure)
    assert stream.closed


async def test_a_failure_while_opening_is_mapped() -> None:
    """A vendor exception raised by the SDK call itself is mapped too."""

    async def refused() -> _Stream:
        raise _VendorFailure("connect failed")

    mapper = _Mapper()
    with pytest.raises(ProviderError, match="acme mapped"):
        await anext(_drive(refused, mapper))
    assert len(mapper.calls) == 1


async def test_a_domain_error_from_the_normalizer_passes_unmapped() -> None:
    """A domain error the normalizer raises (an error the vendor reported in-stream) is not mapped again."""
    mapper = _Mapper()
    with pytest.raises(ValidationError):
        _ = [event async for event in _drive(_Stream(["invalid"]), mapper)]
    assert mapper.calls == []


async def test_an_error_building_the_request_passes_unmapped() -> None:
    """An error in our own request building is not reported as the vendor's, even one of a MALFORMED type."""
    built: list[bool] = []

    def build_fails() -> Awaitable[_Stream]:
        built.append(True)
        raise KeyError("max_tokens")

    mapper = _Mapper()
    events = _drive(build_fails, mapper)
    assert built == []  # nothing is built before the first event is asked for
    with pytest.raises(KeyError):
        await anext(events)
    assert mapper.calls == []


async def test_a_stream_without_its_terminator_is_a_retryable_provider_error() -> None:
    """A stream that ends before the vendor's terminator raises a retryable ProviderError, after the text it sent."""
    seen, error = await _until_error(_drive(_Stream(["Hel", "lo"])))
    assert seen == [TextDelta("Hel"), TextDelta("lo")]
    assert isinstance(error, ProviderError)
    assert (str(error), error.provider, error.retryable) == ("acme ended the stream early", "acme", True)


async def test_closing_the_events_early_closes_the_vendor_stream() -> None:
    """A consumer that stops reading and closes the events releases the vendor stream at once."""
    stream = _Stream(["Hel", "lo", "stop"])
    events = _drive(stream)
    assert await anext(events) == TextDelta("Hel")
    await events.aclose()
    assert stream.closed


async def test_an_async_generator_stream_is_closed_with_aclose() -> None:
    """A vendor stream that is an async generator (google-genai) is closed with ``aclose``."""
    closed: list[bool] = []

    async def chunks() -> AsyncIterator[str]:
        try:
            yield "Hel"
            yield "stop"
        finally:
            closed.append(True)

    async def opened() -> AsyncIterator[str]:
        return chunks()

    events = _drive(opened)
    assert await anext(events) == TextDelta("Hel")
    await events.aclose()
    assert closed == [True]


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abcdefghijklmnop1234",
        "gsk_abcdefghijklmnop1234",
        "pplx-abcdefghijklmnop1234",
        "xai-abcdefghijklmnop1234",
        "sk-ant-api03-abcdefghijklmnop",
        "AIzaSyA-abcdefghijklmnopqrstuvwxyz012345",
        "x" * 64,
    ],
)
def test_safe_reason_masks_key_like_tokens(secret: str) -> None:
    """Every vendor's key shape is masked in a reason passed on to a client."""
    cleaned = safe_reason(f"Incorrect API key provided: {secret}.")
    assert secret not in cleaned
    assert cleaned == "Incorrect API key provided: [redacted]."


def test_safe_reason_caps_length_and_falls_back_on_empty_messages() -> None:
    """A long reason is cut to MAX_REASON characters ending in an ellipsis; no text means the fallback."""
    capped = safe_reason("word " * 200)
    assert len(capped) == MAX_REASON
    assert capped.endswith("…")
    assert safe_reason("  short  ") == "short"
    assert safe_reason("   ") == "the provider rejected the request"
    assert safe_reason(None, "unknown error") == "unknown error"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500", "retry-after": "2"}, 1.5),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({"retry-after": "-4"}, 0.0),
        ({}, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], expected: float | None) -> None:
    """retry-after-ms wins over retry-after in seconds; an HTTP date or other non-number is ignored; never negative."""
    assert retry_after_seconds(headers) == expected


class _Timeout(_VendorFailure):
    """A timeout that is also an 'unreachable' transport error, as in httpx."""


def test_generic_failure_classifies_what_no_vendor_mapping_claimed() -> None:
    """Timeouts win over unreachable, unreachable and malformed are retryable, anything else is a failed call."""
    kinds = {"timeouts": (_Timeout,), "unreachable": (_VendorFailure,)}
    timeout = generic_failure("acme", _Timeout(), **kinds)
    assert isinstance(timeout, ProviderTimeoutError)
    unreachable = generic_failure("acme", _VendorFailure(), **kinds)
    assert (type(unreachable), unreachable.retryable, str(unreachable)) == (ProviderError, True, "could not reach acme")
    malformed = generic_failure("acme", ValueError("not JSON"), **kinds)
    assert (malformed.retryable, str(malformed)) == (True, "acme sent a malformed chunk")
    other = generic_failure("acme", RuntimeError("boom"), **kinds)
    assert (other.retryable, str(other)) == (False, "acme call failed")


def _raised(exc: BaseException, cause: BaseException) -> BaseException:
    """``exc`` as ``raise exc from cause`` leaves it."""
    exc.__cause__ = cause
    return exc


def test_a_timeout_caused_by_a_dropped_connection_is_unreachable() -> None:
    """A "timeout" whose cause is an unreachable error that is no timeout (aiohttp's refused connection, which its
    httpx2 adapter re-raises as ConnectTimeout) is the vendor being unreachable; a timeout caused by a timeout stays
    one."""
    kinds = {"timeouts": (_Timeout,), "unreachable": (_VendorFailure,)}
    refused = generic_failure("acme", _raised(_Timeout(), _VendorFailure("connection refused")), **kinds)
    assert (type(refused), refused.retryable, str(refused)) == (ProviderError, True, "could not reach acme")
    slow = generic_failure("acme", _raised(_Timeout(), _raised(_Timeout(), TimeoutError())), **kinds)
    assert isinstance(slow, ProviderTimeoutError)
    read = generic_failure("acme", _raised(_Timeout(), TimeoutError("socket read")), **kinds)
    assert isinstance(read, ProviderTimeoutError)


_VENDOR = _VendorFailure("the SDK's status error")


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_not_retryable_and_drop_the_vendor_text(status: int) -> None:
    """401/403: a non-retryable ProviderError naming the status; the vendor's message (it may quote the key) is
    nowhere in it."""
    error = status_error("acme", status, _VENDOR, message="Incorrect API key sk-abcdefghijklmnop1234")
    assert type(error) is ProviderError
    assert (str(error), error.retryable) == (f"acme rejected our credentials (HTTP {status})", False)
    assert "sk-" not in repr(error.context)
    assert error.original_error is _VENDOR


def test_a_rate_limit_carries_the_vendors_retry_after() -> None:
    """429: a RateLimitError with the seconds the caller read from the vendor."""
    error = status_error("acme", 429, _VENDOR, retry_after=2.5, vendor_code="rate_limit_error")
    assert isinstance(error, RateLimitError)
    assert (error.retry_after, error.context["vendor_code"], error.context["status"]) == (2.5, "rate_limit_error", 429)


@pytest.mark.parametrize(
    ("status", "retryable_type"), [(408, False), (500, False), (503, False), (529, False), (409, True)]
)
def test_timeouts_server_errors_and_retryable_vendor_types_are_retryable(status: int, retryable_type: bool) -> None:
    """408 and 5xx (or a status the vendor's error type says is transient) are a retryable ProviderError."""
    error = status_error("acme", status, _VENDOR, retryable=retryable_type)
    assert type(error) is ProviderError
    assert (str(error), error.retryable) == (f"acme is unavailable (HTTP {status})", True)
    mid_stream = status_error("acme", status, _VENDOR, retryable=retryable_type, mid_stream=True)
    assert str(mid_stream) == "acme reported an error mid-stream"


@pytest.mark.parametrize("status", [400, 413, 422])
def test_a_request_problem_is_a_validation_error_naming_a_field(status: int) -> None:
    """400/413/422: a ValidationError naming the field (fixed, or chosen from the safe reason) with the vendor's
    message masked of key-like tokens."""
    error = status_error("acme", status, _VENDOR, message="bad key sk-abcdefghijklmnop1234 in `temperature`")
    assert isinstance(error, ValidationError)
    assert (error.context["field"], error.reason) == ("request", "bad key [redacted] in `temperature`")
    chosen = status_error("acme", status, _VENDOR, message="prompt is too long", field=lambda r: r.split()[0])
    assert isinstance(chosen, ValidationError)
    assert chosen.context["field"] == "prompt"
    silent = status_error("acme", status, _VENDOR)
    assert isinstance(silent, ValidationError)
    assert silent.reason == "the provider rejected the request"


@pytest.mark.parametrize("status", [404, 409, 418])
def test_any_other_status_is_a_refused_call(status: int) -> None:
    """Anything else the ladder does not name: the vendor refused the call, not retryable."""
    error = status_error("acme", status, _VENDOR, vendor_code=7)
    assert type(error) is ProviderError
    assert (str(error), error.retryable, error.context["vendor_code"]) == (
        f"acme refused the call (HTTP {status})",
        False,
        None,
    )
