"""HTTP boundary: CORS for the API (``/api/``, the ``/v1/`` front doors and ``/openapi.json``), from ``http.cors_*``.

A browser page on another origin may call the API when its origin is listed in ``http.cors_origins``: an exact origin
(``https://app.example.com``), one with any port (``http://localhost:*``), or ``*`` (any origin, only without
``http.cors_allow_credentials``; bearer tokens are not credentials in the CORS sense, so pages need none). An empty
list sends no CORS header at all, the default outside ``local``.

Preflights (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) are answered here with 204 by the first
request hook that can answer them, before authentication: a browser sends them without the page's ``Authorization``.
Every other API response to an allowed origin gets ``Access-Control-Allow-Origin`` and the exposed headers
(``X-Stream-ID``, ``X-Request-ID``, ``Retry-After``, ``Server-Timing`` by default), errors included, so a page can read
a 401 or a 429 too. Pages outside the API (the playground, its dev-token route) never get CORS headers.

Not quart-cors: its ``cors()`` also refuses (400) every browser WebSocket whose ``Origin`` is not listed, which would
break same-origin pages whenever the list is set, and it leaves the preflight to Quart's automatic ``OPTIONS``, which
runs after the authentication hook. The rules needed here fit in this module and its tests.
"""

from __future__ import annotations

import re
from typing import Final

from attrs import frozen
from quart import Quart, Response, request

from domain.errors import ConfigurationError
from entrypoints.http.auth import PROTECTED_PREFIXES
from settings.model import HttpSettings

__all__ = ["CorsPolicy", "install_cors"]

_ORIGIN: Final = re.compile(
    r"(?P<scheme>https?)://(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}|\*))?"
)
_DOCUMENTS: Final = frozenset({"/openapi.json"})
_SIMPLE_METHODS: Final = frozenset({"GET", "HEAD", "POST"})
_PREFLIGHT_VARY: Final = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
_ORIGINS_KEY: Final = "SWITCHYARD_HTTP_CORS_ORIGINS"


def _origin_pattern(origin: str) -> re.Pattern[str]:
    match = _ORIGIN.fullmatch(origin.strip())
    if match is None:
        raise ConfigurationError(
            _ORIGINS_KEY,
            f"{origin!r} is not an origin: scheme://host[:port], e.g. https://app.example.com or http://localhost:*",
        )
    scheme, host, port = match["scheme"].lower(), re.escape(match["host"].lower()), match["port"]
    if port == "*":  # any port, and none (a browser leaves the scheme's default port out of Origin)
        return re.compile(rf"{scheme}://{host}(?::\d{{1,5}})?", re.IGNORECASE)
    suffix = f":{port}" if port else ""
    return re.compile(rf"{scheme}://{host}{suffix}", re.IGNORECASE)


@frozen
class CorsPolicy:
    """Which origins may call the API and what their pages may send and read."""

    origins: tuple[re.Pattern[str], ...]
    any_origin: bool
    allow_credentials: bool
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...] | None  # None: the headers the preflight asks for (``*`` in the settings)
    expose_headers: tuple[str, ...]
    max_age_s: int

    @classmethod
    def from_settings(cls, http: HttpSettings) -> CorsPolicy | None:
        """The policy of ``http.cors_*`` (``None`` when no origin is listed); a ``ConfigurationError`` naming the
        variable for an entry that is not an origin, ``*`` with credentials, or a negative max age."""
        entries = [origin.strip() for origin in http.cors_origins if origin.strip()]
        if not entries:
            return None
        any_origin = "*" in entries
        if any_origin and http.cors_allow_credentials:
            raise ConfigurationError(
                _ORIGINS_KEY, "`*` cannot be combined with http.cors_allow_credentials: list the origins instead"
            )
        if http.cors_max_age_s < 0:
            raise ConfigurationError("SWITCHYARD_HTTP_CORS_MAX_AGE_S", f"must be >= 0, got {http.cors_max_age_s}")
        headers = tuple(h.strip() for h in http.cors_allow_headers if h.strip())
        return cls(
            origins=tuple(_origin_pattern(origin) for origin in entries if origin != "*"),
            any_origin=any_origin,
            allow_credentials=http.cors_allow_credentials,
            allow_methods=tuple(dict.fromkeys(m.strip().upper() for m in http.cors_allow_methods if m.strip())),
            allow_headers=None if "*" in headers else headers,
            expose_headers=tuple(h.strip() for h in http.cors_expose_headers if h.strip()),
            max_age_s=http.cors_max_age_s,
        )

    def allowed(self, origin: str | None) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for a request from ``origin`` (``None``: not allowed)."""
        if not origin:
            return None
        if self.any_origin:
            return "*"
        return origin if any(pattern.fullmatch(origin) for pattern in self.origins) else None

    def method_allowed(self, method: str) -> bool:
        """Whether a preflight may be told yes for ``method``."""
        return method.upper() in self.allow_methods or method.upper() in _SIMPLE_METHODS


def _applies(path: str) -> bool:
    return path.startswith(PROTECTED_PREFIXES) or path in _DOCUMENTS


def _is_preflight() -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def _grant(response: Response, policy: CorsPolicy, allowed: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = allowed
    if policy.allow_credentials:
        response.headers["Access-Control-Allow-Credentials"] = "true"


def _preflight_response(policy: CorsPolicy) -> Response:
    """The 204 answer to the current preflight: permissions only when its origin and method are allowed."""
    response = Response("", status=204)
    response.headers["Vary"] = _PREFLIGHT_VARY
    allowed = policy.allowed(request.headers.get("Origin"))
    if allowed is None or not policy.method_allowed(request.headers["Access-Control-Request-Method"]):
        return response  # no permission: the browser blocks the request it meant to send
    _grant(response, policy, allowed)
    response.headers["Access-Control-Allow-Methods"] = ", ".join(policy.allow_methods)
    asked = request.headers.get("Access-Control-Request-Headers", "")
    granted = asked if policy.allow_headers is None else ", ".join(policy.allow_headers)
    if granted.strip():
        response.headers["Access-Control-Allow-Headers"] = granted
    response.headers["Access-Control-Max-Age"] = str(policy.max_age_s)
    return response


def install_cors(app: Quart, http: HttpSettings) -> None:
    """Answer API preflights and decorate API responses per ``http.cors_*``. Call it before ``install_auth``, so
    the preflight hook runs first; with no origin configured it installs nothing."""
    policy = CorsPolicy.from_settings(http)
    if policy is None:
        return

    async def answer_preflight() -> Response | None:
        if _is_preflight() and _applies(request.path):
            return _preflight_response(policy)
        return None

    async def decorate(response: Response) -> Response:
        if not _applies(request.path) or _is_preflight():
            return response
        if not policy.any_origin:
            response.vary.add("Origin")  # caches must not serve one origin's answer to another
        allowed = policy.allowed(request.headers.get("Origin"))
        if allowed is not None:
            _grant(response, policy, allowed)
            if policy.expose_headers:
                response.headers["Access-Control-Expose-Headers"] = ", ".join(policy.expose_headers)
        return response

    app.before_request(answer_preflight)
    app.after_request(decorate)
