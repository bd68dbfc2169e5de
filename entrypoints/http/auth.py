"""HTTP boundary: authentication for every HTTP and WebSocket route under ``/api/`` (and ``/v1/``, the vendor-shaped
front doors, whose SDKs send the key as a bearer token) and the ``current_auth()`` accessor.

Routes read the caller with ``current_auth()``; they never parse tokens themselves. WebSocket handlers call
``websocket_auth()`` first thing. A socket may carry its token, in this order of precedence:

1. an ``Authorization: Bearer <token>`` header;
2. ``Sec-WebSocket-Protocol: bearer, <token>`` (the connection is accepted with ``bearer`` echoed, or with the first
   other protocol the client offered, as RFC 6455 requires the server to pick one of the offered values);
3. ``?access_token=<token>``, only when ``auth.allow_query_token`` is set (it ends up in access logs);
4. otherwise a first message ``{"type": "auth", "token": "<token>"}`` within ``auth.ws_auth_timeout_s``.

Handshake credentials are checked before the upgrade, so a bad one is an HTTP 401 with the envelope; a bad or late
auth message closes the socket with 4401. Every authenticated socket gets a watchdog that closes it with 4401 when
its token expires (``exp`` + leeway) or, for a socket opened with an API key, soon after the key is revoked (within
``auth.key_recheck_s``; the reason says which), and cancels the handler; handlers get this for free.

Paths outside ``/api/`` can be protected too: ``protect_path(app, path)`` (``install_auth`` does it for ``/metrics``
when ``auth.metrics_require_auth`` is set), or ``await authenticate_request()`` inside a route for run-time decisions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import wraps
from typing import Any, Final, ParamSpec, TypeVar

import structlog
from dependency_injector.wiring import Provide, inject
from quart import Quart, current_app, g, request, websocket

from domain.auth import AuthContext
from domain.errors import AuthenticationError, AuthorizationError, ServiceError
from entrypoints.http.errors import ws_close_code_for
from ports.auth import TokenVerifier
from services.api_keys import ApiKeyService
from services.principal import bind_principal
from settings import Settings
from settings.model import AuthSettings

__all__ = [
    "API_PREFIX",
    "BEARER_SUBPROTOCOL",
    "DOOR_PREFIX",
    "METRICS_PATH",
    "PROTECTED_PREFIXES",
    "QUERY_TOKEN_PARAM",
    "TICKET_PARAM",
    "accept_key_header",
    "accept_ticket",
    "authenticate_request",
    "bearer_token",
    "current_auth",
    "install_auth",
    "protect_path",
    "require_scopes",
    "requires_auth",
    "websocket_auth",
]

API_PREFIX: Final = "/api/"
DOOR_PREFIX: Final = "/v1/"  # the OpenAI- and Anthropic-shaped front doors (entrypoints/http/doors)
PROTECTED_PREFIXES: Final = (API_PREFIX, DOOR_PREFIX)
METRICS_PATH: Final = "/metrics"
BEARER_SUBPROTOCOL: Final = "bearer"
QUERY_TOKEN_PARAM: Final = "access_token"  # noqa: S105 - a parameter name (RFC 6750), not a secret
_PROTECTED: Final = "switchyard.auth.protected_paths"
_KEY_HEADERS: Final = "switchyard.auth.key_headers"
TICKET_PARAM: Final = "ticket"  # stream tickets (issue 15): see accept_ticket
_TICKET_ENDPOINTS: Final = "switchyard.auth.ticket_endpoints"
_MESSAGE_OVERHEAD: Final = 1024  # room for the JSON around the token in an auth message
_log = structlog.get_logger("switchyard.auth")
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


def protect_path(app: Quart, path: str) -> None:
    """Require a bearer token on ``path`` (exact match, HTTP and WebSocket) although it lies outside ``/api/``."""
    protected: set[str] = app.extensions.setdefault(_PROTECTED, set())
    protected.add(path)


def accept_key_header(app: Quart, path: str, header: str) -> None:
    """On ``path`` and below, also take the bare token from ``header`` when there is no ``Authorization`` header:
    for a front door whose vendor's clients send their key that way (Anthropic's ``x-api-key``)."""
    accepted: dict[str, str] = app.extensions.setdefault(_KEY_HEADERS, {})
    accepted[path] = header


def accept_ticket(app: Quart, endpoint: str) -> None:
    """Let requests to ``endpoint`` carry ``?ticket=`` instead of a bearer token (``EventSource`` cannot send headers):
    the hook then leaves authentication to the view, which redeems the ticket for the one resource it opens."""
    endpoints: set[str] = app.extensions.setdefault(_TICKET_ENDPOINTS, set())
    endpoints.add(endpoint)


def _carries_ticket() -> bool:
    return TICKET_PARAM in request.args and request.endpoint in current_app.extensions.get(_TICKET_ENDPOINTS, ())


def _request_token() -> str:
    authorization = request.headers.get("Authorization")
    if not authorization:
        for path, header in current_app.extensions.get(_KEY_HEADERS, {}).items():
            key = request.headers.get(header, "").strip()
            if key and (request.path == path or request.path.startswith(path + "/")):
                return key
    return bearer_token(authorization)


def requires_auth(path: str) -> bool:
    """True for paths under ``/api/`` or ``/v1/`` and paths registered with ``protect_path``."""
    return path.startswith(PROTECTED_PREFIXES) or path in current_app.extensions.get(_PROTECTED, ())


def _set_caller(auth: AuthContext) -> None:
    g.auth = auth
    structlog.contextvars.bind_contextvars(customer_id=auth.customer_id)
    bind_principal(auth)  # an API key's model allow-list, applied by the services (services/quotas.py)


@inject
async def authenticate_request(verifier: TokenVerifier = Provide["token_verifier"]) -> AuthContext:
    """Authenticate the current HTTP request's bearer token now (idempotent), for routes that decide at run time."""
    existing = getattr(g, "auth", None)
    if isinstance(existing, AuthContext):
        return existing
    auth = await verifier.verify(_request_token())
    _set_caller(auth)
    return auth


async def _authenticate_request_hook() -> None:
    if requires_auth(request.path) and not _carries_ticket():
        await authenticate_request()


def _bearer_index(offered: Sequence[str]) -> int | None:
    for index, protocol in enumerate(offered):
        if protocol.lower() == BEARER_SUBPROTOCOL:
            return index
    return None


def _subprotocol_credentials(offered: Sequence[str]) -> tuple[str | None, str | None]:
    """(token, subprotocol to echo) from ``Sec-WebSocket-Protocol: bearer, <token>[, app-protocol]``."""
    index = _bearer_index(offered)
    if index is None:
        return None, None
    if index + 1 >= len(offered) or not offered[index + 1].strip():
        raise AuthenticationError("the bearer subprotocol must be followed by the token")
    others = [p for i, p in enumerate(offered) if i not in (index, index + 1)]
    return offered[index + 1].strip(), others[0] if others else offered[index]


def _handshake_credentials(policy: AuthSettings) -> tuple[str | None, str | None]:
    """(token, subprotocol to echo) carried by the upgrade request itself; (None, None) means: wait for a message."""
    token, subprotocol = _subprotocol_credentials(websocket.requested_subprotocols)
    header = websocket.headers.get("Authorization")
    if header:
        return bearer_token(header), subprotocol
    if token is not None:
        return token, subprotocol
    if QUERY_TOKEN_PARAM in websocket.args:
        if not policy.allow_query_token:
            raise AuthenticationError(
                "query-string tokens are disabled; send the Authorization header, the bearer subprotocol "
                "or an auth message"
            )
        return bearer_token(f"Bearer {websocket.args.get(QUERY_TOKEN_PARAM, '')}"), None
    return None, None


def _token_from_message(raw: str | bytes, limit: int) -> str:
    if len(raw) > limit:
        raise AuthenticationError("auth message too large")
    try:
        message: Any = json.loads(raw)
    except (ValueError, RecursionError):
        message = None
    if not isinstance(message, dict) or message.get("type") != "auth":
        raise AuthenticationError('the first message must be {"type": "auth", "token": "<token>"}')
    token = message.get("token")
    if not isinstance(token, str) or not token.strip():
        raise AuthenticationError("the auth message carries no token")
    token = token.strip()
    return bearer_token(token) if token.lower().startswith("bearer ") else token


async def _close_for(error: ServiceError) -> None:
    with contextlib.suppress(Exception):  # the peer may be gone already
        await websocket.close(ws_close_code_for(error), error.message[:120])


async def _authenticate_by_message(verifier: TokenVerifier, policy: AuthSettings) -> AuthContext:
    await websocket.accept()
    try:
        try:
            async with asyncio.timeout(policy.ws_auth_timeout_s):
                raw = await websocket.receive()
        except TimeoutError:
            raise AuthenticationError(f"no auth message within {policy.ws_auth_timeout_s:g} s") from None
        return await verifier.verify(_token_from_message(raw, policy.max_token_bytes + _MESSAGE_OVERHEAD))
    except ServiceError as error:
        await _close_for(error)
        raise


async def _guard(socket: Any, handler: asyncio.Task[Any], deadline: float | None, keys: ApiKeyService | None,
                 token: str) -> None:  # fmt: skip
    """Wait for the token's expiry or, for an API key, its revocation; then close with 4401 and cancel the handler."""
    wait = None if deadline is None else max(0.0, deadline - time.time())
    reason = "token expired"
    if keys is None:
        await asyncio.sleep(wait if wait is not None else math.inf)
    else:
        with keys.watch(token) as revoked, contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                reason = await revoked
    error = AuthenticationError(reason)
    _log.info("websocket_credential_ended", reason=reason)
    with contextlib.suppress(Exception):
        await socket.close(ws_close_code_for(error), error.message)
    handler.cancel()


def _start_watchdog(auth: AuthContext, leeway_s: float, keys: ApiKeyService | None) -> None:
    """Close the socket with 4401 and cancel its handler when the token expires or its API key is revoked."""
    handler = asyncio.current_task()
    deadline = auth.expires_at + leeway_s if auth.expires_at is not None and math.isfinite(auth.expires_at) else None
    watched = keys if auth.key_id is not None else None
    if handler is None or (deadline is None and watched is None):
        return
    socket = websocket._get_current_object()  # type: ignore[attr-defined]  # the proxy dies with the context
    g.auth_watchdog = asyncio.create_task(_guard(socket, handler, deadline, watched, auth.token))


async def _stop_watchdog(_error: BaseException | None) -> None:
    task = getattr(g, "auth_watchdog", None)
    if isinstance(task, asyncio.Task) and task is not asyncio.current_task():
        task.cancel()


@inject
async def _authenticate_websocket(
    verifier: TokenVerifier = Provide["token_verifier"],
    settings: Settings = Provide["settings"],
    keys: ApiKeyService = Provide["api_keys"],
) -> AuthContext:
    existing = getattr(g, "auth", None)
    if isinstance(existing, AuthContext):
        return existing
    policy = settings.auth
    token, subprotocol = _handshake_credentials(policy)
    if token is not None:
        auth = await verifier.verify(token)
        if subprotocol is not None:
            await websocket.accept(subprotocol=subprotocol)
    else:
        auth = await _authenticate_by_message(verifier, policy)
    _set_caller(auth)
    _start_watchdog(auth, policy.leeway_s, keys)
    return auth


async def websocket_auth() -> AuthContext:
    """The caller of the current WebSocket; call it first thing in every WebSocket handler.

    On ``/api/`` paths the ``before_websocket`` hook has already authenticated the socket (so this just returns the
    caller); elsewhere it runs the same flow now. A failure before the upgrade is an HTTP 401/503 with the envelope;
    after it, the socket is closed with the table's close code (4401, or 1013 when the issuer is down).
    """
    return await _authenticate_websocket()


async def _authenticate_websocket_hook() -> None:
    if requires_auth(websocket.path):
        await _authenticate_websocket()


def install_auth(app: Quart) -> None:
    """Require a valid bearer token on every HTTP and WebSocket route under ``/api/`` and ``/v1/`` (after the container
    is wired).

    ``/metrics`` joins the protected paths when the container's ``auth.metrics_require_auth`` is set.
    """
    container = app.extensions.get("container")
    if container is not None and container.settings().auth.metrics_require_auth:
        protect_path(app, METRICS_PATH)
    app.before_request(_authenticate_request_hook)
    app.before_websocket(_authenticate_websocket_hook)
    app.teardown_websocket(_stop_watchdog)
