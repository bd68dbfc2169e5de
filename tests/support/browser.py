"""Test helper: a real browser for the browser tests, Playwright for Python driving the system's Chromium.

Playwright never downloads a browser here: it launches Debian's ``chromium`` (``/usr/bin/chromium``, or the path in
``SWITCHYARD_TEST_CHROMIUM``). Without it, or without the ``playwright`` package, the tests skip with a message saying
how to install it, and fail in CI (``SWITCHYARD_REQUIRE_SERVICES=1``), whose ``.ci/run`` installs the package.
A second tiny server (``static_site``) serves test pages from a folder on another port: another origin.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.services import service_missing

__all__ = ["chromium_path", "static_site"]

_DEFAULT_CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> str:
    """The Chromium executable to drive; skips (locally) or fails (CI) the test when there is none."""
    path = os.environ.get("SWITCHYARD_TEST_CHROMIUM") or shutil.which("chromium") or _DEFAULT_CHROMIUM
    if not Path(path).is_file():
        service_missing(
            "chromium", f"no browser at {path}: `apt-get install -y chromium` (or SWITCHYARD_TEST_CHROMIUM)"
        )
    try:
        import playwright  # noqa: F401 - only whether it is installed
    except ImportError:
        service_missing("playwright", "the playwright package is missing: `make env` installs the dev group")
    return path


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@contextlib.contextmanager
def static_site(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a free port of 127.0.0.1 from a thread; yields the site's base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, name="static-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
