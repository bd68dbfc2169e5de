"""Entrypoint: run the Quart app on Hypercorn, in this process or in N spawned workers, and stop it gracefully.

Hypercorn on its own, at SIGTERM, stops accepting, waits ``graceful_timeout`` for connections, cancels the rest and
only then runs the app's lifespan shutdown: too late to tell a connected client how its stream ended. So every
serving process here hands Hypercorn a ``shutdown_trigger`` that, on SIGTERM or SIGINT, first awaits
``entrypoints.http.shutdown.drain(app)`` (new streams refused, running ones finish within ``http.shutdown_grace_s``,
the rest end with ``cancelled``/``shutdown``, terminal events delivered, WebSockets closed with 1001). Hypercorn's
``graceful_timeout`` (``http.graceful_timeout_s``) starts only after that, for connections still finishing a write.

With workers the parent binds the address (so a port in use fails the start once, named) and owns a stop event,
which it sets on SIGTERM/SIGINT, and waits for every worker to finish its drain. (``hypercorn.run`` gives a worker no
early shutdown hook, and terminates the other workers as soon as the first one exits, cutting their drains short.)
Where the platform has ``SO_REUSEPORT`` each worker listens on a socket of its own bound to that address, so the
kernel spreads new connections across the workers: on one shared listening socket, whichever worker wakes first
accepts a whole burst, and a client's keep-alive connections can all land on one worker while the other idles.

The start-up banner waits for the server to answer (``announce_when_serving``), and a start that fails for a known
reason (a ``ServiceError`` from a resource: the database unreachable ...) ends with that error alone, for the CLI to
print in one line, instead of Quart's and Hypercorn's tracebacks.
"""

from __future__ import annotations

import asyncio
import gc
import http.client
import logging
import multiprocessing
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from multiprocessing.connection import wait
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import LifespanFailureError, wrap_app
from quart import Quart
from quart.signals import got_serving_exception

from domain.errors import ConfigurationError, ServiceError
from entrypoints.http.shutdown import drain
from settings import Settings

__all__ = [
    "announce_when_serving",
    "hypercorn_config",
    "own_sockets",
    "probe_address",
    "serve_in_process",
    "serve_workers",
]

_log = logging.getLogger("switchyard.serve")
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def hypercorn_config(settings: Settings) -> Config:
    """Hypercorn's configuration from ``settings.http``; a value Hypercorn cannot use stops the start, named."""
    http = settings.http
    if http.backlog < 1:
        raise ConfigurationError("SWITCHYARD_HTTP_BACKLOG", f"must be at least 1, got {http.backlog}")
    if http.shutdown_grace_s < 0:
        raise ConfigurationError("SWITCHYARD_HTTP_SHUTDOWN_GRACE_S", f"must be >= 0, got {http.shutdown_grace_s}")
    if http.graceful_timeout_s <= 0:
        raise ConfigurationError("SWITCHYARD_HTTP_GRACEFUL_TIMEOUT_S", f"must be > 0, got {http.graceful_timeout_s}")
    config = Config()
    config.bind = [f"{http.host}:{http.port}"]
    config.workers = http.workers
    # The listen queue: Hypercorn's default of 100 refuses connections in bursts (3% at 2,000 new connections/s).
    config.backlog = http.backlog
    # Counted from the end of the drain (see the module docstring), so it needs no room for the grace period.
    config.graceful_timeout = http.graceful_timeout_s
    config.keep_alive_timeout = http.keep_alive_s
    config.accesslog = None
    # A Logger (not a path) makes Hypercorn log through the root handler, which structlog formats and redacts;
    # None would drop its error messages altogether.
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


def probe_address(host: str, port: int) -> tuple[str, int]:
    """Where a local client reaches a server bound to ``host``: the loopback of its family for a wildcard bind."""
    wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
    return wildcard.get(host, host.strip("[]")), port


def announce_when_serving(
    host: str, port: int, lines: Sequence[str], *, interval_s: float = 0.05, out: Callable[[str], object] = print
) -> threading.Thread:
    """Print ``lines`` once ``GET /health`` on ``host:port`` answers 200 (from a daemon thread that polls it), so
    "listening" is never printed before the socket accepts, nor for a start that fails. With workers the parent's
    sockets listen before any worker serves: only an answer says one does."""
    address = probe_address(host, port)

    def probe() -> None:
        while True:
            connection = http.client.HTTPConnection(*address, timeout=1.0)  # not urllib: no proxy from the env
            try:
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            finally:
                connection.close()
            time.sleep(interval_s)
        out("\n".join(lines))
        sys.stdout.flush()

    thread = threading.Thread(target=probe, name="switchyard-banner", daemon=True)
    thread.start()
    return thread


def serve_in_process(app: Quart, config: Config) -> None:
    """Serve ``app`` in this process until SIGTERM/SIGINT, then drain and stop."""
    _run_loop(_serve(app, config, None, None))


def serve_workers(config: Config, workers: int, build_app: Callable[[], Quart] | None = None) -> int:
    """Serve ``entrypoints.asgi:app`` (or what ``build_app``, a module-level function, returns in each worker) in
    ``workers`` spawned processes sharing this process' listening sockets.

    Returns 0 after a stop signal once every worker has drained, or the exit code of a worker that died on its own
    (the others are then stopped too).
    """
    # This process only waits from here on: spare it the interpreter's final full collection of everything it
    # imported to check the settings (seconds on a loaded machine, after the workers have long exited).
    gc.freeze()
    sockets = config.create_sockets()
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    # Ignored until each worker's loop installs its own handlers (spawned children inherit SIG_IGN): a signal that
    # arrives while a worker still imports must not kill it; the stop event reaches it once it serves.
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _STOP_SIGNALS}
    processes = [
        context.Process(
            target=_worker,
            kwargs={"config": config, "sockets": sockets, "stop": stop, "build_app": build_app},
            daemon=False,
        )
        for _ in range(workers)
    ]
    try:
        for process in processes:
            process.start()
        for sig in _STOP_SIGNALS:
            signal.signal(sig, lambda *_: stop.set())
        exit_code = 0
        running = list(processes)
        while running:
            wait([process.sentinel for process in running])
            for process in [p for p in running if p.exitcode is not None]:
                running.remove(process)
                if not stop.is_set():  # a worker ended on its own (a crash, a failed start): stop the rest
                    exit_code = process.exitcode or 1
                    stop.set()
        return exit_code
    finally:
        stop.set()  # if this process fails, the workers it started drain and exit too (multiprocessing joins them)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sock in sockets.secure_sockets + sockets.insecure_sockets:
            sock.close()


def own_sockets(shared: Sockets) -> Sockets:
    """A worker's own listening sockets: for each TCP socket the parent bound, a new one bound to the same address
    with ``SO_REUSEPORT`` (the kernel then balances connections across the workers' sockets); other sockets (Unix,
    QUIC, or no ``SO_REUSEPORT`` here) stay shared."""

    def own(sock: socket.socket) -> socket.socket:
        if (
            not hasattr(socket, "SO_REUSEPORT")
            or sock.family not in (socket.AF_INET, socket.AF_INET6)
            or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)  # the parent's bind must allow it too
        ):
            return sock
        mine = socket.socket(sock.family, socket.SOCK_STREAM)
        mine.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mine.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        mine.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        mine.bind(sock.getsockname())
        mine.setblocking(False)
        return mine

    return Sockets(
        secure_sockets=[own(sock) for sock in shared.secure_sockets],
        insecure_sockets=[own(sock) for sock in shared.insecure_sockets],
        quic_sockets=shared.quic_sockets,
    )


def _worker(
    config: Config, sockets: Sockets, stop: ProcessEvent, build_app: Callable[[], Quart] | None
) -> None:  # pragma: no cover - runs in a child
    """A spawned worker: one container and app (``entrypoints.asgi``, or ``build_app()``), served until ``stop`` or a
    signal. A start that fails for a known reason prints it in one line and exits 1 (the parent then stops)."""
    try:
        if build_app is None:
            from entrypoints.asgi import app
        else:
            app = build_app()
        _run_loop(_serve(app, config, own_sockets(sockets), stop))
    except ServiceError as exc:  # worded as the CLI words it (entrypoints/cli.py main)
        what = "configuration error" if isinstance(exc, ConfigurationError) else exc.code
        print(f"switchyard: {what}: {exc.message}", file=sys.stderr, flush=True)
        sys.exit(2 if isinstance(exc, ConfigurationError) else 1)


def _run_loop(main: Awaitable[None]) -> None:
    runner: Callable[[Any], Any] = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is optional on some platforms
        pass
    runner(main)


async def _serve(app: Quart, config: Config, sockets: Sockets | None, stop: ProcessEvent | None) -> None:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_without_cancelled_connections(loop.get_exception_handler()))
    stopping = asyncio.Event()
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, stopping.set)
    watcher = asyncio.create_task(_watch(stop, stopping)) if stop is not None else None

    async def drained() -> None:
        await stopping.wait()
        try:
            await drain(app)
        except Exception:  # noqa: BLE001 - Hypercorn must still close up; the failure is logged
            _log.exception("shutdown_drain_failed")

    failures = _StartupFailures(app)
    try:
        asgi = wrap_app(app, config.wsgi_max_body_size, "asgi")
        await worker_serve(asgi, config, sockets=sockets, shutdown_trigger=drained)
    except LifespanFailureError:
        failures.raise_known()
        raise
    finally:
        failures.close()
        if watcher is not None:
            watcher.cancel()
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)


class _StartupFailures(logging.Filter):
    """Remembers a ``ServiceError`` that failed the app's start (Quart's ``got_serving_exception``) and keeps its
    traceback out of the log: the error is raised again from ``_serve`` for the CLI to print in one line."""

    def __init__(self, app: Quart) -> None:
        super().__init__()
        self._app = app
        self.errors: list[ServiceError] = []
        got_serving_exception.connect(self._remember, app, weak=False)
        app.logger.addFilter(self)

    def _remember(self, _sender: Quart, exception: BaseException, **_: object) -> None:
        if isinstance(exception, ServiceError):
            self.errors.append(exception)

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and any(record.exc_info[1] is error for error in self.errors))

    def raise_known(self) -> None:
        if self.errors:
            raise self.errors[0] from None

    def close(self) -> None:
        got_serving_exception.disconnect(self._remember, self._app)
        self._app.logger.removeFilter(self)


async def _watch(stop: ProcessEvent, stopping: asyncio.Event) -> None:
    """Relay the parent's stop event (a multiprocessing Event cannot be awaited) to this worker's loop."""
    while not stop.is_set():  # noqa: ASYNC110 - polled, as Hypercorn does: a thread blocked on it would hang exit
        await asyncio.sleep(0.1)
    stopping.set()


_CONNECTION_CALLBACK = "StreamReaderProtocol.connection_made"
_Handler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


def _without_cancelled_connections(previous: _Handler | None) -> _Handler:
    """The loop's exception handler, minus one CPython 3.11 false alarm.

    Python 3.11's ``StreamReaderProtocol`` logs "Exception in callback ... CancelledError" with a traceback for each
    connection task that is cancelled (it calls ``task.exception()`` on it; fixed upstream by gh-113538). Hypercorn
    cancels every connection still open when ``graceful_timeout`` ends: expected at shutdown, not an error.
    """

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), asyncio.CancelledError) and _CONNECTION_CALLBACK in repr(
            context.get("handle")
        ):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    return handle
