"""HTTP boundary: ``X-RateLimit-Limit/Remaining/Reset/Resource`` on successful responses whose calls were admitted
under a limit (a 429 gets them from the error table, ``entrypoints/http/errors.py``).

The quota gate reports, in the request's context, where the limit closest to refusing stands once the call was
admitted (``services/principal.report_rate_status``); this hook copies it onto the response. It covers the native
routes and the front doors alike, streamed responses included (their headers go out after the call was admitted).
Nothing is added when nothing was limited, so unlimited deployments see no new headers.
"""

from __future__ import annotations

from quart import Quart, Response

from entrypoints.http.errors import rate_status_headers
from services.principal import current_rate_status

__all__ = ["install_rate_headers"]


async def _add_rate_headers(response: Response) -> Response:
    status = current_rate_status()
    if status is not None and response.status_code < 400 and "X-RateLimit-Limit" not in response.headers:
        response.headers.update(rate_status_headers(status))
    return response


def install_rate_headers(app: Quart) -> None:
    """Add the admitted call's rate limit headers to every successful response that has one."""
    app.after_request(_add_rate_headers)
