"""entrypoints.serve: the Hypercorn configuration from settings, and the loop's exception handler at shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from domain.errors import ConfigurationError
from entrypoints.serve import _without_cancelled_connections, hypercorn_config
from tests.support.app import make_settings


def test_the_listen_backlog_and_timeouts_reach_the_hypercorn_config(tmp_path: Path) -> None:
    """http.backlog becomes Hypercorn's listen backlog (its default is 100); the timeouts and bind come along."""
    settings = make_settings(
        tmp_path, http={"backlog": 4096, "graceful_timeout_s": 7.5, "keep_alive_s": 3.0, "port": 9123}
    )
    config = hypercorn_config(settings)
    assert config.backlog == 4096
    assert config.graceful_timeout == 7.5
    assert config.keep_alive_timeout == 3.0
    assert config.bind == ["127.0.0.1:9123"]


@pytest.mark.parametrize(
    ("field", "value", "variable"),
    [
        ("backlog", 0, "SWITCHYARD_HTTP_BACKLOG"),
        ("shutdown_grace_s", -1.0, "SWITCHYARD_HTTP_SHUTDOWN_GRACE_S"),
        ("graceful_timeout_s", 0.0, "SWITCHYARD_HTTP_GRACEFUL_TIMEOUT_S"),
    ],
)
def test_an_unusable_server_setting_stops_the_start_naming_its_variable(
    tmp_path: Path, field: str, value: float, variable: str
) -> None:
    """A backlog below 1, a negative shutdown grace or a non-positive graceful timeout is a configuration error."""
    with pytest.raises(ConfigurationError) as raised:
        hypercorn_config(make_settings(tmp_path, http={field: value}))
    assert raised.value.key == variable


async def test_a_cancelled_connection_task_logs_nothing() -> None:
    """Cancelling a connection task of asyncio.start_server (as Hypercorn does past graceful_timeout) reaches no
    handler: Python 3.11 reports it as "Exception in callback ... CancelledError" with a traceback."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(_without_cancelled_connections(lambda _loop, context: reported.append(context)))
    connected: asyncio.Queue[asyncio.Task[Any]] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connected.put_nowait(task)
        await reader.read()  # a client that keeps its connection open

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        task = await asyncio.wait_for(connected.get(), 10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for _ in range(5):  # let the protocol's done-callback run
            await asyncio.sleep(0)
        loop.call_soon(_raise_value_error)  # anything else still reaches the previous handler
        await asyncio.sleep(0.01)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
        loop.set_exception_handler(previous)
    assert [type(context.get("exception")) for context in reported] == [ValueError]


def _raise_value_error() -> None:
    raise ValueError("a real error in a callback")
