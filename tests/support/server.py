"""Test helper: run a real ``switchyard serve`` (Hypercorn) process on a free port for end-to-end tests.

With ``test_routes=True`` the process is ``python -m tests.support.serve``: the same command, whose app also serves
the test-only routes (``POST /api/v1/streams/test``, see ``tests/support/streams.py``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from tests.support.app import TEST_SECRET

__all__ = ["RunningServer", "free_port", "running_server"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RunningServer:
    """A started server: its base URL and the process (for its output)."""

    def __init__(self, base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.base_url = base_url
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running_server(
    tmp_path: Path, env: Mapping[str, str] | None = None, *, timeout_s: float = 60.0, test_routes: bool = False
) -> Iterator[RunningServer]:
    """Start ``switchyard serve`` with test settings (plus ``env``, and the test routes if asked) and stop it
    afterwards."""
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    child_env = {
        k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_") or k == "SWITCHYARD_REQUIRE_SERVICES"
    }
    child_env.update(
        {
            "SWITCHYARD_ENV": "test",
            "SWITCHYARD_HTTP_PORT": str(port),
            "SWITCHYARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / f'server-{port}.db'}",
            "SWITCHYARD_AUTH_JWT_SECRET": TEST_SECRET.reveal(),
            "SWITCHYARD_LOGGING_LEVEL": "INFO",
            **(env or {}),
        }
    )
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", *(["tests.support.serve"] if test_routes else ["entrypoints.cli", "serve"])],
            env=child_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
    base_url = f"http://127.0.0.1:{port}"
    server = RunningServer(base_url, process, log_path)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
            try:
                if httpx.get(f"{base_url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not answer /health within {timeout_s}s:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
