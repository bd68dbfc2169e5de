"""Use case context: the authenticated caller of the request being served, for rules that belong to the credential
rather than to the customer (an API key's model allow-list).

The HTTP boundary binds it when it authenticates a request or a WebSocket (``entrypoints/http/auth.py``), in the
context the handler and the tasks it starts inherit; services read it where they decide which models a call may use.
Nothing bound (the CLI, a test calling a service directly) means a caller without credential rules.

The quota gate reports back the same way: where the tightest limit stands once a call of the request was admitted
(``report_rate_status``), which the HTTP boundary turns into ``X-RateLimit-*`` headers on the response.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar

from domain.api_keys import model_allowed
from domain.auth import AuthContext
from domain.catalog import ModelSpec
from domain.quotas import RateStatus

__all__ = [
    "allows_model",
    "bind_principal",
    "current_principal",
    "current_rate_status",
    "report_rate_status",
    "visible_models",
]

_PRINCIPAL: ContextVar[AuthContext | None] = ContextVar("switchyard_principal", default=None)
_RATE: ContextVar[RateStatus | None] = ContextVar("switchyard_rate_status", default=None)


def bind_principal(auth: AuthContext | None) -> None:
    """Make ``auth`` the caller of the current request (and of tasks started from it from now on)."""
    _PRINCIPAL.set(auth)


def current_principal() -> AuthContext | None:
    """The caller bound to the current context, if any."""
    return _PRINCIPAL.get()


def allows_model(spec: ModelSpec) -> bool:
    """Whether the current caller's credential may use ``spec`` (any model when it has no allow-list)."""
    principal = _PRINCIPAL.get()
    if principal is None or principal.models is None:
        return True
    return model_allowed(principal.models, (spec.qualified_id, spec.id, *spec.aliases), spec.provider)


def visible_models(specs: Iterable[ModelSpec]) -> list[ModelSpec]:
    """``specs`` the current caller may use, in order: what a model listing shows it."""
    return [spec for spec in specs if allows_model(spec)]


def report_rate_status(status: RateStatus | None) -> None:
    """Where a limit stands after a call of the current request was admitted; of several calls (a voiced chat admits
    its speech too) the one with the least share left is kept."""
    if status is None:
        return
    current = _RATE.get()
    if current is None or status.share < current.share:
        _RATE.set(status)


def current_rate_status() -> RateStatus | None:
    """The tightest limit reported in the current context, if any call was admitted under a limit."""
    return _RATE.get()
