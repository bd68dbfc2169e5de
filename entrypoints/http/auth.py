"""HTTP boundary: authentication for every route under ``/api/`` and the ``current_auth()`` accessor.

Routes read the caller with ``current_auth()``; they never parse tokens themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Final, ParamSpec, TypeVar

import structlog
from dependency_injector.wiring import Provide, inject
from quart import Quart, g, request, websocket

from domain.auth import AuthContext
from domain.errors import AuthenticationError, AuthorizationError
from ports.auth import TokenVerifier

__all__ = ["API_PREFIX", "bearer_token", "current_auth", "install_auth", "require_scopes", "websocket_auth"]

API_PREFIX: Final = "/api/"
P = ParamSpec("P")
R = TypeVar("R")


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; ``AuthenticationError`` when absent or malformed."""
    if not header:
        raise AuthenticationError("missing bearer token")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthenticationError("authorization scheme must be Bearer")
    token = token.strip()
    if not token:
        raise AuthenticationError("empty bearer token")
    return token


def current_auth() -> AuthContext:
    """The caller of the current request or WebSocket."""
    auth = getattr(g, "auth", None)
    if not isinstance(auth, AuthContext):
        raise AuthenticationError("not authenticated")
    return auth


def require_scopes(*scopes: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Route decorator: 403 unless the caller holds every scope."""
    required = frozenset(scopes)

    def decorate(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(view)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            missing = required - current_auth().scopes
            if missing:
                raise AuthorizationError(
                    f"missing required scope(s): {', '.join(sorted(missing))}",
                    context={"missing_scopes": sorted(missing)},
                )
            return await view(*args, **kwargs)

        return wrapper

    return decorate


def _set_caller(auth: AuthContext) -> None:
    g.auth = auth
    structlog.contextvars.bind_contextvars(customer_id=auth.customer_id)


@inject
async def _authenticate_request(verifier: TokenVerifier = Provide["token_verifier"]) -> None:
    if not request.path.startswith(API_PREFIX):
        return
    _set_caller(await verifier.verify(bearer_token(request.headers.get("Authorization"))))


@inject
async def _authenticate_websocket(verifier: TokenVerifier = Provide["token_verifier"]) -> None:
    if not websocket.path.startswith(API_PREFIX):
        return
    header = websocket.headers.get("Authorization")
    if header:
        _set_caller(await verifier.verify(bearer_token(header)))


async def websocket_auth() -> AuthContext:
    """The caller of the current WebSocket; call it first thing in every ``/api/`` WebSocket handler.

    Today: the ``Authorization`` header, checked in ``before_websocket``. (The auth work extends this with the
    ``Sec-WebSocket-Protocol`` bearer, a first ``{"type": "auth"}`` message and expiry mid-connection.)
    """
    return current_auth()


def install_auth(app: Quart) -> None:
    """Require a valid bearer token for every HTTP route under ``/api/`` (call after the container is wired)."""
    app.before_request(_authenticate_request)
    app.before_websocket(_authenticate_websocket)
