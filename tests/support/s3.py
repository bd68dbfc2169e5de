"""Test helper: a local S3 server (moto's server mode on 127.0.0.1, a free port) for the S3 adapter's tests.

A real HTTP server the SDK talks to, not a patched client. When moto is missing or cannot start, tests skip locally
and fail in CI (``SWITCHYARD_REQUIRE_SERVICES=1``), like PostgreSQL and Redis.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from tests.support.services import service_missing

__all__ = ["ACCESS_KEY", "REGION", "SECRET_KEY", "local_s3", "unique_bucket"]

ACCESS_KEY: Final = "testing"
SECRET_KEY: Final = "testing"
REGION: Final = "us-east-1"
_START_TIMEOUT_S: Final = 15.0


@contextmanager
def local_s3() -> Iterator[str]:
    """Run moto's S3 server for the block; yields its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # the dev dependency group is not installed
        service_missing("moto (local S3 server)", f"cannot import moto.server: {exc}")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # port 0: the OS picks a free one
    # start() waits without a bound for a server thread that may have died binding: bound it here.
    starter = threading.Thread(target=server.start, daemon=True)
    starter.start()
    starter.join(_START_TIMEOUT_S)
    if starter.is_alive():
        service_missing("moto (local S3 server)", f"did not start on 127.0.0.1 within {_START_TIMEOUT_S} s")
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def unique_bucket() -> str:
    """A bucket name no other test uses (the server's state lives as long as the server)."""
    return f"media-{uuid.uuid4().hex[:16]}"
