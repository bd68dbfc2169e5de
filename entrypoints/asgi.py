"""Entrypoint: the production ASGI app for Hypercorn (``hypercorn entrypoints.asgi:app``), one container per worker.

This module and the CLI are the only entrypoints that import the composition root.
"""

from __future__ import annotations

from container import build_container
from entrypoints.http.app import create_app, freeze_heap_after_start

app = create_app(build_container())
freeze_heap_after_start(app)  # no full-GC walks of the start-up heap while serving
