"""Driven adapter: Redis implementation of ``QuotaStore``; every step is one Lua script (``quotas.lua``), so instances
sharing the Redis can never both pass a limit on the same headroom.

Layout per customer, all under one hash tag (``<prefix>{<customer>}:``) so a cluster keeps them in one slot:
``held`` (calls in flight, their tokens and spend), ``exp`` and ``res`` (each reservation's expiry and amounts),
``rpm:<minute>`` and ``tpm:<minute>`` (requests and settled tokens of a UTC minute), ``usd:d:<day>`` and
``usd:m:<month>`` (settled spend). An API key with limits of its own has the same window counters under
``k:<key id>:`` in its customer's slot, and its calls in flight are fields of the customer's ``held`` hash, so one
script checks and holds the customer's and the key's limits together. Window keys expire once their window is long
over; reservations expire at their ``expires_at`` (a crashed instance's holds come back) and are purged by the next
script that looks. Redis errors become ``ServiceUnavailableError`` (503): a limit that cannot be checked is not
waved through.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from domain.errors import ServiceUnavailableError
from domain.quotas import (
    LIMIT_NAMES,
    Consumption,
    Grant,
    LimitName,
    Limits,
    QuotaUsage,
    Refusal,
    Reservation,
    Scope,
    Standing,
    Windows,
    to_units,
    to_usd,
)

__all__ = ["RedisQuotaStore"]

T = TypeVar("T")
_LUA: Final = (Path(__file__).parent / "quotas.lua").read_text()
_MINUTE_TTL_MS: Final = 120_000
_DAY_TTL_MS: Final = 2 * 86_400_000
_MONTH_TTL_MS: Final = 32 * 86_400_000
# The order the reserve script takes the limits in (and checks them).
_SCRIPT_ORDER: Final = (
    "concurrent_streams",
    "requests_per_minute",
    "tokens_per_minute",
    "daily_budget_usd",
    "monthly_budget_usd",
)


def _script(name: str) -> str:
    """The ``lib`` section followed by section ``name`` of quotas.lua."""
    sections = {head.strip(): body for head, _, body in (s.partition("\n") for s in _LUA.split("-- @")[1:])}
    return sections["lib"] + sections[name]


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class RedisQuotaStore:
    """Quota counters in Redis; ``prefix`` namespaces the keys (tests use a unique one each)."""

    def __init__(self, client: Redis, *, prefix: str = "switchyard:quota:", held_ttl_s: float = 600.0) -> None:
        self._client = client
        self._prefix = prefix
        self._held_ttl_ms = _ms(held_ttl_s)
        self._reserve = client.register_script(_script("reserve"))
        self._settle = client.register_script(_script("settle"))
        self._renew = client.register_script(_script("renew"))
        self._raise = client.register_script(_script("raise"))
        self._usage = client.register_script(_script("usage"))

    def _base(self, customer_id: str) -> str:
        return f"{self._prefix}{{{customer_id}}}:"

    def _held_keys(self, customer_id: str) -> list[str]:
        base = self._base(customer_id)
        return [f"{base}held", f"{base}exp", f"{base}res"]

    def _window_keys(self, customer_id: str, windows: Windows, key_id: str | None = None) -> list[str]:
        base = self._base(customer_id) if key_id is None else f"{self._base(customer_id)}k:{key_id}:"
        return [
            f"{base}rpm:{windows.minute}",
            f"{base}tpm:{windows.minute}",
            f"{base}usd:d:{windows.day}",
            f"{base}usd:m:{windows.month}",
        ]

    @staticmethod
    async def _call(operation: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except RedisError as exc:
            raise ServiceUnavailableError(
                f"redis did not answer ({operation}): limits cannot be checked",
                context={"backend": "redis", "operation": operation},
            ) from exc

    async def reserve(
        self, reservation: Reservation, limits: Limits, windows: Windows, now: float, key_limits: Limits | None = None
    ) -> Refusal | Grant:
        customer = reservation.customer_id
        keys = self._held_keys(customer) + self._window_keys(customer, windows)
        key_id = reservation.key_id if key_limits is not None else None
        key_caps = [-1] * len(_SCRIPT_ORDER)
        if key_id is not None and key_limits is not None:
            keys += self._window_keys(customer, windows, key_id)
            key_caps = [_cap(name, getattr(key_limits, name)) for name in _SCRIPT_ORDER]
        caps = [_cap(name, getattr(limits, name)) for name in _SCRIPT_ORDER]
        held_ttl = max(self._held_ttl_ms, _ms(reservation.expires_at - now) * 2)
        args: list[Any] = [
            reservation.id,
            _ms(now),
            _ms(reservation.expires_at),
            reservation.holds.tokens,
            reservation.holds.usd_units,
            *caps,
            held_ttl,
            _MINUTE_TTL_MS,
            key_id or "",
            *key_caps,
        ]
        answer = await self._call("quota_reserve", lambda: self._reserve(keys=keys, args=args))
        if answer[0] == b"ok":
            rows = answer[1:]
            return Grant(
                tuple(
                    Standing(_limit(rows[i]), int(rows[i + 2]), int(rows[i + 3]), int(rows[i + 4]), _scope(rows[i + 1]))
                    for i in range(0, len(rows), 5)
                )
            )
        return Refusal(_limit(answer[0]), int(answer[1]), int(answer[2]), int(answer[3]), _scope(answer[4]))

    async def settle(
        self,
        customer_id: str,
        reservation_id: str | None,
        consumed: Consumption,
        windows: Windows,
        key_id: str | None = None,
    ) -> None:
        keys = self._held_keys(customer_id) + self._window_keys(customer_id, windows)[1:]
        if key_id is not None:
            keys += self._window_keys(customer_id, windows, key_id)[1:]
        args: list[str | int] = [
            reservation_id or "",
            consumed.tokens,
            consumed.usd_units,
            _MINUTE_TTL_MS,
            _DAY_TTL_MS,
            _MONTH_TTL_MS,
        ]
        await self._call("quota_settle", lambda: self._settle(keys=keys, args=args))

    async def renew(self, held: Mapping[str, Sequence[str]], expires_at: float) -> None:
        # One script per customer (renewals run every few seconds, for the calls in flight on this instance).
        for customer_id, ids in held.items():
            if ids:
                args: list[str | int] = [_ms(expires_at), self._held_ttl_ms, *ids]
                await self._call("quota_renew", partial(self._renew, keys=self._held_keys(customer_id), args=args))

    async def raise_spend(self, customer_id: str, windows: Windows, day_units: int, month_units: int) -> None:
        keys = self._window_keys(customer_id, windows)[2:]
        args = [day_units, month_units, _DAY_TTL_MS, _MONTH_TTL_MS]
        await self._call("quota_raise", lambda: self._raise(keys=keys, args=args))

    async def usage(self, customer_id: str, windows: Windows, now: float, key_id: str | None = None) -> QuotaUsage:
        keys = self._held_keys(customer_id) + self._window_keys(customer_id, windows, key_id)
        args: list[str | int] = [_ms(now), "" if key_id is None else f"k:{key_id}:"]
        raw = await self._call("quota_usage", lambda: self._usage(keys=keys, args=args))
        n, tok, usd, rpm, tpm, day, month = (int(value) for value in raw)
        return QuotaUsage(n, tok, to_usd(usd), rpm, tpm, to_usd(day), to_usd(month))


def _limit(raw: bytes) -> LimitName:
    name = raw.decode()
    if name not in LIMIT_NAMES:  # pragma: no cover - the script names only these (and narrows the type)
        raise ServiceUnavailableError(f"unexpected quota answer {name!r}")
    return name


def _scope(raw: bytes) -> Scope:
    return "key" if raw == b"key" else "customer"


def _cap(name: str, value: float | None) -> int:
    """A limit as the script takes it: -1 unlimited, budgets in counting units."""
    if value is None:
        return -1
    return to_units(value) if name.endswith("_usd") else int(value)
