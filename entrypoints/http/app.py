"""Driving adapter: the Quart app factory.

``create_app(container)`` wires the container into the HTTP package, registers blueprints, the error table,
request context and auth, and starts/stops container resources in the app's lifespan. There is no module-level app.
"""

from __future__ import annotations

import gc

from dependency_injector.containers import Container
from quart import Quart

from entrypoints.http import auth, context, cors, errors, rate_headers, resolved, shutdown, uploads
from entrypoints.http.doors.anthropic import routes as anthropic_door
from entrypoints.http.doors.openai import routes as openai_door
from entrypoints.http.routes import admin_keys as admin_keys_routes
from entrypoints.http.routes import admin_quotas as admin_quotas_routes
from entrypoints.http.routes import chat as chat_routes
from entrypoints.http.routes import docs, health
from entrypoints.http.routes import embeddings as embeddings_routes
from entrypoints.http.routes import images as images_routes
from entrypoints.http.routes import live_transcription as live_transcription_routes
from entrypoints.http.routes import media as media_routes
from entrypoints.http.routes import metrics as metrics_routes
from entrypoints.http.routes import model_health as model_health_routes
from entrypoints.http.routes import models as models_routes
from entrypoints.http.routes import playground as playground_routes
from entrypoints.http.routes import realtime as realtime_routes
from entrypoints.http.routes import speech as speech_routes
from entrypoints.http.routes import streams as streams_routes
from entrypoints.http.routes import tickets as tickets_routes
from entrypoints.http.routes import transcriptions as transcriptions_routes
from entrypoints.http.routes import usage as usage_routes
from entrypoints.http.routes import videos as videos_routes
from settings import Settings

__all__ = ["create_app", "freeze_heap_after_start"]

_SETTLED = "switchyard.settled_providers"


def create_app(container: Container) -> Quart:
    """Build the Quart app around ``container`` (a wired ``container.Container``)."""
    settings: Settings = container.settings()
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
    shutdown.install_drain(app)  # what a stopping server finishes first (see entrypoints/serve.py)
    cors.install_cors(app, settings.http)  # browser pages on other origins: preflights answered before auth
    auth.install_auth(app)
    rate_headers.install_rate_headers(app)  # X-RateLimit-* on successes too, from the quota gate's admission
    errors.register_error_handlers(app)
    for blueprint in (health.blueprint, docs.blueprint):
        app.register_blueprint(blueprint)
    app.register_blueprint(playground_routes.blueprint)  # GET /playground: try the API in a browser
    app.register_blueprint(usage_routes.blueprint)
    app.register_blueprint(admin_keys_routes.blueprint)  # /api/v1/admin/keys: API keys (admin)
    app.register_blueprint(admin_quotas_routes.blueprint)  # /api/v1/admin/quotas: limits and budgets (admin)
    app.register_blueprint(model_health_routes.blueprint)  # GET /api/v1/health/models: breakers (admin)
    app.register_blueprint(models_routes.blueprint)
    app.register_blueprint(chat_routes.blueprint)
    app.register_blueprint(embeddings_routes.blueprint)
    app.register_blueprint(images_routes.blueprint)
    app.register_blueprint(metrics_routes.blueprint)
    app.register_blueprint(streams_routes.blueprint)
    app.register_blueprint(tickets_routes.blueprint)  # stream tickets: ?ticket= on the events route, for EventSource
    app.register_blueprint(media_routes.blueprint)
    app.register_blueprint(videos_routes.blueprint)  # /api/v1/videos: durable video generation jobs
    app.register_blueprint(speech_routes.blueprint)
    # speech-to-text: its upload route takes bodies up to audio.max_upload_bytes (every other route keeps its limit)
    uploads.install_body_limits(app, transcriptions_routes.upload_limits(settings.audio.max_upload_bytes))
    app.register_blueprint(transcriptions_routes.blueprint)
    app.register_blueprint(live_transcription_routes.blueprint)  # WS /api/v1/ws/transcribe: live speech-to-text
    app.register_blueprint(realtime_routes.blueprint)  # WS /api/v1/ws/realtime: realtime voice (issue 17)
    app.register_blueprint(openai_door.blueprint)  # OpenAI's API under /v1 (entrypoints/http/doors/openai)
    app.register_blueprint(anthropic_door.blueprint)  # Anthropic's Messages API (entrypoints/http/doors/anthropic)

    @app.before_serving
    async def _start_resources() -> None:
        result = container.init_resources()
        if result is not None:
            await result
        app.extensions[_SETTLED] = await resolved.settle(container)  # per-request injection without a Task each

    @app.after_serving
    async def _stop_resources() -> None:
        resolved.unsettle(app.extensions.pop(_SETTLED, []))
        result = container.shutdown_resources()
        if result is not None:
            await result

    return app


# Apart from create_app: only served processes (``switchyard serve``, ``entrypoints.asgi``) freeze their heap, as a
# test process builds many apps and would pin every one of them.
def freeze_heap_after_start(app: Quart) -> None:
    """Once the app's resources are up, move every object then alive (modules, SDK and ORM classes, the container)
    into the collector's permanent generation, so the periodic full collection no longer re-walks them: in a served
    process that walk took ~200 ms of stalled event loop every couple of thousand requests. Call after
    ``create_app`` so this runs after the resources start."""

    @app.before_serving
    async def _freeze_heap() -> None:
        gc.collect()
        gc.freeze()
