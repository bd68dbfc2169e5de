"""Test helper: the scripted stream producer and its route (``POST /api/v1/streams/test``), for tests that need real
streams without a vendor: a number of text events at a pace, then a clean end, a failure, or silence.

Production never serves this route. ``tests.support.serve`` (what ``running_server(..., test_routes=True)`` starts)
adds it to the real app with ``add_test_routes``; so can an in-process test app.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from typing import Literal

from attrs import frozen
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Quart, Response

from container import build_container
from domain.errors import ProviderError
from domain.types import JsonValue
from entrypoints.http.app import create_app, freeze_heap_after_start
from entrypoints.http.auth import current_auth
from entrypoints.http.envelope import api_ok
from entrypoints.http.openapi import documented
from entrypoints.http.serialization import json_response, read_body
from services.streaming import Producer, StreamingManager, StreamPublisher

__all__ = ["StreamScript", "StreamStarted", "add_test_routes", "blueprint", "scripted_producer", "served_test_app"]

blueprint = Blueprint("streams_test", __name__)


@frozen
class StreamScript:
    """``events`` text events ``interval_ms`` apart, then return, raise (``fail``) or go silent (``hang``)."""

    events: int = 5
    interval_ms: float = 0.0
    text: str = "tok"
    fail: Literal["provider", "crash"] | None = None
    hang: bool = False


@frozen
class StreamStarted:
    """The id of a started stream."""

    stream_id: str


def scripted_producer(script: StreamScript) -> Producer:
    """A producer following ``script``: ``start``, the text events, ``usage``, then the scripted end."""

    async def produce(publisher: StreamPublisher) -> Mapping[str, JsonValue] | None:
        await publisher.publish("start", {"model": "demo/scripted", "provider": "demo"})
        for index in range(script.events):
            if script.interval_ms > 0:
                await asyncio.sleep(script.interval_ms / 1000)
            await publisher.publish("text", {"text": f"{script.text}{index} ", "index": index})
        await publisher.publish("usage", {"input_tokens": 1, "output_tokens": script.events})
        if script.fail == "provider":
            raise ProviderError("demo", "scripted provider failure", retryable=True)
        if script.fail == "crash":
            raise RuntimeError("scripted crash")
        if script.hang:
            await asyncio.Event().wait()
        return {"finish_reason": "stop", "events": script.events}

    return produce


@blueprint.post("/api/v1/streams/test")
@inject
@documented("Start a scripted test stream (test servers only)", request=StreamScript, response=StreamStarted)
async def start_test_stream(manager: StreamingManager = Provide["streaming_manager"]) -> Response:
    script = await read_body(StreamScript, max_bytes=4096)
    stream_id = await manager.start(owner=current_auth().customer_id, producer=scripted_producer(script), kind="test")
    return json_response(api_ok(StreamStarted(stream_id)), headers={"X-Stream-ID": stream_id})


def add_test_routes(app: Quart) -> None:
    """Serve the test routes on ``app`` (built by ``create_app``), injected from the app's own container."""
    app.extensions["container"].wire(modules=[sys.modules[__name__]])
    app.register_blueprint(blueprint)


def served_test_app() -> Quart:
    """What a serving process of ``tests.support.serve`` runs: the production app (as ``entrypoints.asgi`` builds it,
    settings from the environment) plus the test routes."""
    app = create_app(build_container())
    add_test_routes(app)
    freeze_heap_after_start(app)
    return app
