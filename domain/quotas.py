"""Domain: a customer's limits and budgets, the windows they are counted in, and the error for going over one.

Limits are requests per minute, tokens per minute, calls in flight at once (``concurrent_streams``) and spend per
UTC day and month in USD; ``None`` is unlimited. Settings give every customer's defaults; a ``LimitOverride`` per
customer replaces some of them (``None`` inherits, ``UNLIMITED`` lifts one). Spend is counted in integer units of
1e-8 USD (the precision costs are rounded to), so sums are exact on every backend, Lua included.

A call *reserves* before any vendor is called (one request, one slot in flight, its estimated tokens and cost); what
it actually consumed is counted as its usage is recorded, and its reservation is *settled* (dropped) when it ends; a
reservation left by a crashed process expires. A window's usage is what was counted in it plus what calls in flight
hold, so concurrent calls cannot all pass on the same headroom.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from attrs import fields, frozen

from domain.errors import RateLimitError, ValidationError

__all__ = [
    "BUDGETS",
    "LIMIT_NAMES",
    "UNLIMITED",
    "USD_UNITS",
    "Consumption",
    "Grant",
    "LimitName",
    "LimitOverride",
    "Limits",
    "QuotaExceededError",
    "QuotaUsage",
    "RateStatus",
    "Refusal",
    "Reservation",
    "Scope",
    "Standing",
    "Windows",
    "to_units",
    "to_usd",
]

LimitName = Literal[
    "requests_per_minute", "tokens_per_minute", "concurrent_streams", "daily_budget_usd", "monthly_budget_usd"
]
LIMIT_NAMES: Final[tuple[LimitName, ...]] = (
    "requests_per_minute",
    "tokens_per_minute",
    "concurrent_streams",
    "daily_budget_usd",
    "monthly_budget_usd",
)
BUDGETS: Final = frozenset({"daily_budget_usd", "monthly_budget_usd"})
Scope = Literal["customer", "key"]
"""Whose counters a limit is checked on: the customer's (all its keys and tokens) or one API key's."""
UNLIMITED: Final = -1
"""In an override: lift this limit for the customer whatever the default."""
USD_UNITS: Final = 100_000_000
"""Counting units per USD (1e-8 USD each)."""
_BUDGET_CODES: Final = {"daily_budget_usd": "daily_budget_exceeded", "monthly_budget_usd": "monthly_budget_exceeded"}


def to_units(usd: float) -> int:
    """``usd`` in counting units, rounded up (a reservation never holds less than the estimate)."""
    return math.ceil(round(usd * USD_UNITS, 3))


def to_usd(units: int | float) -> float:
    return round(units / USD_UNITS, 8)


@frozen
class Limits:
    """The limits in force for a customer (``None``: unlimited)."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrent_streams: int | None = None
    daily_budget_usd: float | None = None
    monthly_budget_usd: float | None = None

    @property
    def any(self) -> bool:
        """Whether anything is limited at all (if not, a call reserves nothing)."""
        return any(getattr(self, name) is not None for name in LIMIT_NAMES)

    def check(self, prefix: str = "") -> Limits:
        """These limits, or a ``ValidationError`` naming (after ``prefix``) the first value that is not from 0 to
        its most (a 32-bit count; $1e9 for a budget, whose counting units must stay exact in a double)."""
        for name in LIMIT_NAMES:
            value = getattr(self, name)
            most = 1e9 if name in BUDGETS else 2**31 - 1
            if value is not None and not (math.isfinite(value) and 0 <= value <= most):
                raise ValidationError(f"{prefix}{name}", f"must be from 0 to {most:g} (null: no limit)")
        return self

    @property
    def counts_consumption(self) -> bool:
        """Whether tokens or spend are limited: then calls need an estimate, and their usage is counted."""
        return (self.tokens_per_minute, self.daily_budget_usd, self.monthly_budget_usd) != (None, None, None)

    def over(self, override: LimitOverride | None) -> Limits:
        """These defaults with ``override`` applied."""
        if override is None:
            return self
        values: dict[str, Any] = {}
        for name in LIMIT_NAMES:
            value = getattr(override, name)
            values[name] = getattr(self, name) if value is None else (None if value == UNLIMITED else value)
        return Limits(**values)


@frozen
class LimitOverride:
    """One customer's own limits: ``None`` inherits the default, ``UNLIMITED`` (-1) lifts it, else the value."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrent_streams: int | None = None
    daily_budget_usd: float | None = None
    monthly_budget_usd: float | None = None

    def check(self) -> LimitOverride:
        """This override, or a ``ValidationError`` naming the first value that is neither -1 nor >= 0."""
        for attribute in fields(LimitOverride):
            value = getattr(self, attribute.name)
            if value is not None and value != UNLIMITED and not (math.isfinite(value) and value >= 0):
                raise ValidationError(attribute.name, "must be at least 0, or -1 for unlimited (null inherits)")
        return self


@frozen
class Consumption:
    """Tokens (input + output) and spend in counting units: what a call is expected to, or did, consume."""

    tokens: int = 0
    usd_units: int = 0


@frozen
class Reservation:
    """What one admitted call holds until it is settled or ``expires_at`` (epoch seconds) passes; ``key_id`` names the
    API key whose own limits it is held against too (``None``: the customer's only)."""

    id: str
    customer_id: str
    holds: Consumption
    expires_at: float
    key_id: str | None = None


@frozen
class Windows:
    """The counting windows at one instant (UTC): their keys and the seconds until each ends."""

    minute: str
    day: str
    month: str
    minute_reset_s: float
    day_reset_s: float
    month_reset_s: float

    @classmethod
    def at(cls, now: float) -> Windows:
        """The windows holding epoch second ``now``."""
        moment = datetime.fromtimestamp(now, UTC)
        midnight = datetime(moment.year, moment.month, moment.day, tzinfo=UTC) + timedelta(days=1)
        year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        month_end = datetime(year, month, 1, tzinfo=UTC)
        minute = math.floor(now / 60)
        return cls(
            minute=str(minute),
            day=moment.strftime("%Y%m%d"),
            month=moment.strftime("%Y%m"),
            minute_reset_s=(minute + 1) * 60 - now,
            day_reset_s=(midnight - moment).total_seconds(),
            month_reset_s=(month_end - moment).total_seconds(),
        )

    def reset_s(self, limit: LimitName) -> float:
        """Seconds until ``limit``'s window starts afresh (a slot in flight frees whenever a call ends: 1 s)."""
        return {
            "requests_per_minute": self.minute_reset_s,
            "tokens_per_minute": self.minute_reset_s,
            "concurrent_streams": 1.0,
            "daily_budget_usd": self.day_reset_s,
            "monthly_budget_usd": self.month_reset_s,
        }[limit]


@frozen
class Refusal:
    """Why a reservation was refused: the limit, its value, what was settled in its window and what is held."""

    limit: LimitName
    allowed: int
    used: int
    held: int
    scope: Scope = "customer"

    def error(self, asked: Consumption, windows: Windows) -> QuotaExceededError:
        """The 429 for this refusal (amounts of budgets in USD)."""
        return QuotaExceededError(self, asked, windows)


@frozen
class Standing:
    """One limit just after a call was admitted: its value, what its window counted (this call's request included)
    and what calls in flight hold (this call's included), in counting units."""

    limit: LimitName
    allowed: int
    used: int
    held: int
    scope: Scope = "customer"

    @property
    def remaining(self) -> int:
        return max(0, self.allowed - self.used - self.held)

    def status(self, windows: Windows) -> RateStatus:
        """What the ``X-RateLimit-*`` headers say of this limit (budgets in USD)."""
        scale = to_usd if self.limit in BUDGETS else (lambda amount: amount)
        share = self.remaining / self.allowed if self.allowed > 0 else 0.0
        return RateStatus(
            self.limit,
            self.scope,
            scale(self.allowed),
            scale(self.remaining),
            math.ceil(windows.reset_s(self.limit)),
            share,
        )


@frozen
class Grant:
    """A reservation held: where every limit checked stands now (empty when none was, or for a retried reserve)."""

    standings: tuple[Standing, ...] = ()

    def tightest(self, windows: Windows) -> RateStatus | None:
        """The limit closest to refusing (the smallest share left; the first checked on a tie), or ``None``."""
        statuses = [standing.status(windows) for standing in self.standings]
        return min(statuses, key=lambda status: status.share, default=None)


@frozen
class RateStatus:
    """A limit as a response reports it: ``allowed`` and ``remaining`` (counts, or USD for budgets), seconds until
    ``reset_s``, and the ``share`` of it left (0 to 1), which picks the one limit a response names."""

    limit: LimitName
    scope: Scope
    allowed: int | float
    remaining: int | float
    reset_s: int
    share: float


@frozen
class QuotaUsage:
    """A customer's counters now (for operators): in flight, this minute, today and this month."""

    in_flight: int = 0
    held_tokens: int = 0
    held_usd: float = 0.0
    requests_this_minute: int = 0
    tokens_this_minute: int = 0
    spent_today_usd: float = 0.0
    spent_this_month_usd: float = 0.0


class QuotaExceededError(RateLimitError):
    """A customer's (or its API key's) own limit or budget would be passed (ours, not a vendor's): a 429 before any
    vendor is called.

    ``code`` is ``rate_limited`` for the rate limits and ``daily_budget_exceeded`` / ``monthly_budget_exceeded``
    for the budgets; ``context`` names the limit, its value, what remains and when it resets (the ``X-RateLimit-*``
    headers), and ``retry_after`` when trying again may help."""

    def __init__(self, refusal: Refusal, asked: Consumption, windows: Windows) -> None:
        budget = refusal.limit in BUDGETS
        scale = to_usd if budget else (lambda amount: amount)
        asked_amount = asked.usd_units if budget else (asked.tokens if refusal.limit == "tokens_per_minute" else 1)
        remaining = max(0, refusal.allowed - refusal.used - refusal.held)
        reset = windows.reset_s(refusal.limit)
        alone = asked_amount > refusal.allowed
        # Over only because of calls in flight: one of them may end any moment, so try again soon.
        settled_over = refusal.used + asked_amount > refusal.allowed
        retry = None if alone else (reset if settled_over else min(reset, 1.0))
        what = refusal.limit.replace("_", " ").replace(" usd", " (USD)")
        if refusal.scope == "key":
            what = f"this API key's {what}"
        if alone:
            message = f"this request alone ({scale(asked_amount)}) exceeds the {what} limit of {scale(refusal.allowed)}"
        else:
            message = f"{what} limit of {scale(refusal.allowed)} reached; {scale(remaining)} remaining"
        context: dict[str, Any] = {
            "limit": refusal.limit,
            "allowed": scale(refusal.allowed),
            "remaining": scale(remaining),
            "reset_s": math.ceil(reset),
        }
        if refusal.scope == "key":  # the key's own limit, not the customer's: say so
            context["scope"] = "key"
        super().__init__(message, retry_after=None if retry is None else math.ceil(retry), context=context)
        self.code = _BUDGET_CODES.get(refusal.limit, RateLimitError.code)
        self.refusal = refusal
