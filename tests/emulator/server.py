"""Test double (vendor emulator): serve the emulator app with Hypercorn on a free 127.0.0.1 port, in a thread.

The server thread runs its own event loop, so it keeps answering while a test's loop blocks in an SDK call, and one
server can outlive many tests (the fixtures are session-scoped). ``EmulatorState`` is shared with the thread:
registering a scenario from a test takes effect on the next request. The same app also listens on a second, TLS
port (``tls_root_url``, a self-signed certificate from ``tls``): google-genai opens Gemini Live as ``wss://`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator

from hypercorn.asyncio import serve
from hypercorn.config import Config

from tests.emulator.app import EmulatorState, create_emulator_app
from tests.emulator.tls import certificate

__all__ = ["RunningEmulator", "running_emulator"]


class RunningEmulator:
    """A started emulator: base URLs in the form each SDK wants, and the shared state."""

    def __init__(self, port: int, state: EmulatorState, tls_port: int | None = None) -> None:
        self.port = port
        self.state = state
        self.root_url = f"http://127.0.0.1:{port}"
        self.tls_port = tls_port
        self.tls_root_url = f"https://127.0.0.1:{tls_port}" if tls_port else None

    @property
    def openai_base_url(self) -> str:
        """OpenAI's base URL includes ``/v1``."""
        return f"{self.root_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """Anthropic's base URL has no version."""
        return self.root_url

    @property
    def gemini_base_url(self) -> str:
        """google-genai adds ``/<api_version>/`` itself; the emulator serves ``v1beta`` only (render_gemini)."""
        return self.root_url

    @property
    def gemini_live_base_url(self) -> str:
        """google-genai opens Gemini Live on ``wss://`` whatever the base URL's scheme: the TLS port (trust it with
        ``tests.emulator.tls.client_context()``)."""
        if self.tls_root_url is None:
            raise RuntimeError("this emulator was started without its TLS port")
        return self.tls_root_url


def _crossed_tls_close(error: BaseException) -> bool:
    """A client's frame that crossed the emulator's TLS close (it closed a session, as a fault does): benign."""
    return isinstance(error, ssl.SSLError) and "APPLICATION_DATA_AFTER_CLOSE_NOTIFY" in str(error)


def _quiet_tls_close(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    """The loop's exception handler, leaving out crossed TLS closes."""
    error = context.get("exception")
    if isinstance(error, BaseException) and _crossed_tls_close(error):
        return
    loop.default_exception_handler(context)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_listening(port: int, thread: threading.Thread, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("the vendor emulator thread exited during start-up")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"the vendor emulator did not listen on 127.0.0.1:{port} within {timeout_s}s")


@contextlib.contextmanager
def running_emulator(port: int | None = None, *, state: EmulatorState | None = None) -> Iterator[RunningEmulator]:
    """Serve the emulator until the block exits."""
    port = port or _free_port()
    state = state or EmulatorState()
    config = Config()
    tls_port = _free_port()
    tls = certificate()
    config.bind = [f"127.0.0.1:{tls_port}"]  # with a certificate set, ``bind`` is TLS and ``insecure_bind`` plain
    config.insecure_bind = [f"127.0.0.1:{port}"]
    config.certfile, config.keyfile = str(tls.certfile), str(tls.keyfile)
    config.accesslog = None
    config.graceful_timeout = 0.5
    config.keep_alive_timeout = 30.0
    logging.getLogger("hypercorn.error").setLevel(logging.WARNING)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(_quiet_tls_close)
        try:
            loop.run_until_complete(serve(create_emulator_app(state), config, shutdown_trigger=stop.wait))
        except BaseExceptionGroup as group:  # hypercorn gathers its connections' errors at shutdown
            _, rest = group.split(_crossed_tls_close)
            if rest is not None:
                raise rest from None
        except ssl.SSLError as error:
            if not _crossed_tls_close(error):
                raise

    thread = threading.Thread(target=run, name=f"vendor-emulator-{port}", daemon=True)
    thread.start()
    try:
        _wait_until_listening(port, thread, timeout_s=10.0)
        _wait_until_listening(tls_port, thread, timeout_s=10.0)
        yield RunningEmulator(port, state, tls_port)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=5.0)
        if not thread.is_alive():
            loop.close()
