"""Use case: operators read and set a customer's limits (its override over the ``quotas`` settings) and counters.

A change takes effect at once on this instance and within ``quotas.overrides_ttl_s`` on the others (limits are not
credentials: a few seconds' delay is accepted, unlike a key revocation).
"""

from __future__ import annotations

from collections.abc import Mapping

from attrs import frozen

from domain.errors import ValidationError
from domain.quotas import LimitOverride, Limits, QuotaUsage
from ports.quotas import QuotaOverrideStore
from services.quotas import QuotaGate

__all__ = ["QuotaAdmin", "QuotaReport"]


@frozen
class QuotaReport:
    """A customer's limits (defaults, its override, what is in force) and its counters now."""

    customer_id: str
    defaults: Limits
    override: LimitOverride | None
    effective: Limits
    usage: QuotaUsage


class QuotaAdmin:
    """Overrides through the store; reports through the gate, which enforces them."""

    def __init__(self, gate: QuotaGate, overrides: QuotaOverrideStore) -> None:
        self._gate = gate
        self._overrides = overrides

    async def report(self, customer_id: str) -> QuotaReport:
        """The customer's limits and counters."""
        _check_customer(customer_id)
        override = await self._overrides.get(customer_id)
        defaults = self._gate.policy.defaults
        usage = await self._gate.usage(customer_id)
        return QuotaReport(customer_id, defaults, override, defaults.over(override), usage)

    async def set(self, customer_id: str, override: LimitOverride) -> QuotaReport:
        """Create or replace the customer's override (422 naming a value below -1 or not a number)."""
        _check_customer(customer_id)
        await self._overrides.put(customer_id, override.check())
        self._gate.forget(customer_id)
        return await self.report(customer_id)

    async def clear(self, customer_id: str) -> bool:
        """Remove the customer's override (back to the defaults); whether it had one."""
        _check_customer(customer_id)
        removed = await self._overrides.delete(customer_id)
        self._gate.forget(customer_id)
        return removed

    async def overrides(self) -> Mapping[str, LimitOverride]:
        """Every customer with an override."""
        return await self._overrides.list()


def _check_customer(customer_id: str) -> None:
    if not customer_id.strip() or len(customer_id) > 255:
        raise ValidationError("customer_id", "must be 1 to 255 characters")
