"""Driving adapter: the Quart app factory.

``create_app(container)`` wires the container into the HTTP package, registers blueprints, the error table,
request context and auth, and starts/stops container resources in the app's lifespan. There is no module-level app.
"""

from __future__ import annotations

import gc
from typing import Any

from dependency_injector.containers import Container
from quart import Quart

from entrypoints.http import auth, context, errors, shutdown
from entrypoints.http.routes import chat as chat_routes  # chat
from entrypoints.http.routes import docs, health
from entrypoints.http.routes import metrics as metrics_routes  # observability
from entrypoints.http.routes import models as models_routes  # chat
from entrypoints.http.routes import streams as streams_routes  # streaming
from entrypoints.http.routes import usage as usage_routes  # persistence

__all__ = ["create_app", "freeze_heap_after_start"]


def create_app(container: Container) -> Quart:
    """Build the Quart app around ``container`` (a wired ``container.Container``)."""
    settings: Any = container.settings()
    app = Quart("switchyard")
    app.config.update(
        MAX_CONTENT_LENGTH=settings.limits.max_body_bytes,
        # Streaming routes must not be cut off: per-write send timeouts guard them instead.
        RESPONSE_TIMEOUT=None,
        BODY_TIMEOUT=60,
        JSON_SORT_KEYS=False,
        PROVIDE_AUTOMATIC_OPTIONS=True,
    )
    app.extensions["container"] = container
    container.wire(packages=["entrypoints.http"])

    context.install_request_context(app)
    shutdown.install_drain(app)  # streaming: what a stopping server finishes first (see entrypoints/serve.py)
    auth.install_auth(app)
    errors.register_error_handlers(app)
    for blueprint in (health.blueprint, docs.blueprint):
        app.register_blueprint(blueprint)
    app.register_blueprint(usage_routes.blueprint)  # persistence
    app.register_blueprint(models_routes.blueprint)  # chat
    app.register_blueprint(chat_routes.blueprint)  # chat
    app.register_blueprint(metrics_routes.blueprint)  # observability
    app.register_blueprint(streams_routes.blueprint)  # streaming
    if settings.streaming.test_producer_enabled:  # streaming: the scripted test producer, off by default
        app.register_blueprint(streams_routes.test_blueprint)

    @app.before_serving
    async def _start_resources() -> None:
        result = container.init_resources()
        if result is not None:
            await result

    @app.after_serving
    async def _stop_resources() -> None:
        result = container.shutdown_resources()
        if result is not None:
            await result

    return app


# --- performance: served processes only (``switchyard serve``, ``entrypoints.asgi``); tests build many apps -------
def freeze_heap_after_start(app: Quart) -> None:
    """Once the app's resources are up, move every object then alive (modules, SDK and ORM classes, the container)
    into the collector's permanent generation, so the periodic full collection no longer re-walks them: in a served
    process that walk took ~200 ms of stalled event loop every couple of thousand requests. Call after
    ``create_app`` so this runs after the resources start."""

    @app.before_serving
    async def _freeze_heap() -> None:
        gc.collect()
        gc.freeze()
