"""Entrypoints (driving side): the Quart HTTP/WebSocket app and the CLI. They call services, never adapters."""
