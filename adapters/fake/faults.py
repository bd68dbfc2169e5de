"""Driven adapter (fake): the scripted vendor faults every fake provider plays, written once.

A request (its ``metadata``, or a marker in its text where a modality has no metadata) and the catalog entry's
``default_params`` name the fault: ``fake_error`` (the kind), ``fake_fail_times`` (fail only the first N calls with
one key, then succeed: "429, then success"), ``fake_key`` (that key; by default the call's own content) and
``fake_retry_after`` (a rate limit's ``Retry-After``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from domain.errors import (
    ContentPolicyError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServiceError,
    ValidationError,
)

__all__ = ["FAULT_KINDS", "POLICY_REASON", "FailureCounter", "scripted_fault"]

FAULT_KINDS: Final = ("rate_limited", "provider_error", "overloaded", "timeout", "auth", "content_policy")
POLICY_REASON: Final = "fake: the prompt was refused under the content policy"


def scripted_fault(
    provider: str,
    kind: str,
    retry_after: float | None,
    *,
    kinds: tuple[str, ...] = FAULT_KINDS,
    field: str = "metadata.fake_error",
) -> ServiceError:
    """The domain error a vendor would cause for ``kind``; an unknown (or, for this modality, unplayable) kind is a
    ``ValidationError`` on ``field`` listing ``kinds``."""
    if kind in kinds:
        match kind:
            case "rate_limited":
                return RateLimitError(
                    f"{provider}: rate limited by the vendor", retry_after=retry_after, context={"provider": provider}
                )
            case "provider_error":
                return ProviderError(provider, f"{provider}: the vendor failed")
            case "overloaded":
                return ProviderError(
                    provider, f"{provider}: the vendor is overloaded", retryable=True, context={"status": 503}
                )
            case "timeout":
                return ProviderTimeoutError(provider)
            case "auth":
                return ProviderError(
                    provider, f"{provider}: the vendor rejected our credentials", context={"status": 401}
                )
            case "content_policy":
                return ContentPolicyError(provider, POLICY_REASON)
    return ValidationError(field, f"unknown fake error {kind!r}; known: {', '.join(kinds)}")


class FailureCounter:
    """Which calls fail: every call naming ``fake_error``, or with ``fake_fail_times`` only the first N per key."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def failure(self, option: Callable[[str], Any], default_key: str) -> str | None:
        """The fault kind this call plays (``option`` reads ``fake_*`` values), or ``None`` to succeed."""
        kind = option("fake_error")
        if kind is None:
            return None
        times = option("fake_fail_times")
        if times is not None:
            key = str(option("fake_key") or default_key)
            seen = self._seen.get(key, 0)
            self._seen[key] = seen + 1
            if seen >= int(times):
                return None
        return str(kind)

    async def play(
        self,
        provider: str,
        option: Callable[[str], Any],
        default_key: str,
        sleep: Callable[[float], Awaitable[None]],
        *,
        kinds: tuple[str, ...] = FAULT_KINDS,
    ) -> None:
        """Before a one-shot call: wait ``fake_delay_ms``, then raise this call's scripted fault, if any."""
        delay_ms = option("fake_delay_ms")
        if delay_ms is not None:
            await sleep(float(delay_ms) / 1000.0)
        kind = self.failure(option, default_key)
        if kind is not None:
            retry_after = option("fake_retry_after")
            raise scripted_fault(provider, kind, float(retry_after) if retry_after is not None else None, kinds=kinds)
