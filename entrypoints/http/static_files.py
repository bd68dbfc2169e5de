"""HTTP boundary: serve a fixed set of files shipped with the package (Swagger UI's assets, the playground's page).

Only names on the list are served, from a folder resolved once; anything else is the envelope's 404. A file is read
once, on its first request, and kept (they are few and fixed); never through a path built from the URL.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from quart import Response

from domain.errors import NotFoundError

__all__ = ["FileShelf"]

_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}


class FileShelf:
    """The files ``names`` of ``folder``, served by name with their media type and a cache lifetime."""

    def __init__(self, folder: Path, names: Iterable[str], *, max_age_s: int = 86_400) -> None:
        self._files = {name: folder / name for name in names}
        self._max_age_s = max_age_s
        self._read: dict[str, bytes] = {}

    def response(self, name: str) -> Response:
        """The file ``name`` as a response; ``NotFoundError`` for a name not on the shelf or missing on disk."""
        path = self._files.get(name)
        if path is None or not (name in self._read or path.is_file()):
            raise NotFoundError(f"no file {name!r} here")
        if name not in self._read:
            self._read[name] = path.read_bytes()
        media_type = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "text/plain; charset=utf-8"
        response = Response(self._read[name], content_type=media_type)
        response.headers["Cache-Control"] = f"public, max-age={self._max_age_s}"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
