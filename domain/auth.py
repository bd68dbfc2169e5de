"""Domain: the authenticated caller, as every route and WebSocket sees it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

from domain.quotas import Limits
from domain.types import CustomerId

__all__ = ["AuthContext"]


@frozen
class AuthContext:
    """Who is calling: ``customer_id`` owns streams and usage; ``scopes`` gate routes; ``token`` is never logged."""

    customer_id: CustomerId
    email: str | None = None
    scopes: frozenset[str] = frozenset()
    token: str = field(default="", repr=False)
    payload: Mapping[str, Any] = field(factory=dict, repr=False)
    expires_at: float | None = None
    # Set when the caller authenticated with a Switchyard API key (``sy-...``) rather than a JWT: which key, and the
    # models it may use (``None``: any model) and its own limits (enforced with the customer's).
    key_id: str | None = None
    models: frozenset[str] | None = None
    key_limits: Limits | None = None

    def has_scopes(self, required: frozenset[str]) -> bool:
        """True when every required scope was granted."""
        return required <= self.scopes
