"""Use case context: the authenticated caller of the request being served, for rules that belong to the credential
rather than to the customer (an API key's model allow-list).

The HTTP boundary binds it when it authenticates a request or a WebSocket (``entrypoints/http/auth.py``), in the
context the handler and the tasks it starts inherit; services read it where they decide which models a call may use.
Nothing bound (the CLI, a test calling a service directly) means a caller without credential rules.
"""

from __future__ import annotations

from contextvars import ContextVar

from domain.auth import AuthContext

__all__ = ["bind_principal", "current_principal"]

_PRINCIPAL: ContextVar[AuthContext | None] = ContextVar("switchyard_principal", default=None)


def bind_principal(auth: AuthContext | None) -> None:
    """Make ``auth`` the caller of the current request (and of tasks started from it from now on)."""
    _PRINCIPAL.set(auth)


def current_principal() -> AuthContext | None:
    """The caller bound to the current context, if any."""
    return _PRINCIPAL.get()
