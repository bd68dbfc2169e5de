"""HTTP boundary: larger request bodies for the routes that take uploads, and only for them.

Quart enforces ``MAX_CONTENT_LENGTH`` (``limits.max_body_bytes``) in the request body object it builds before any
route or hook runs, and receives the body concurrently with the handler, so a route cannot raise its own limit
once it is called: the bytes past the app's limit are already refused. The app's request class therefore decides
the limit when the request is created, from its path: a route listed in ``body_limits`` gets its own (larger)
limit, every other route keeps the app's. The route still checks what it reads against its own rule (a file's
size) and answers a 413 that names that rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from quart import Quart
from quart.wrappers import Request

__all__ = ["install_body_limits"]


def install_body_limits(app: Quart, body_limits: Mapping[str, int]) -> None:
    """Give the exact paths in ``body_limits`` their own body limit in bytes (never below the app's)."""
    limits = MappingProxyType(dict(body_limits))
    base: type[Request] = app.request_class

    class UploadRequest(base):  # type: ignore[valid-type,misc]
        """A request whose body limit depends on its path (see the module docstring)."""

        def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any) -> None:
            own = limits.get(path)
            if own is not None:
                own = max(own, kwargs.get("max_content_length") or 0)
                kwargs["max_content_length"] = own  # the body object's limit
            super().__init__(method, scheme, path, *args, **kwargs)
            if own is not None:
                self.max_content_length = own  # the form parser's limit (else it reads the app's)

    app.request_class = UploadRequest
